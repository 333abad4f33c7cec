"""Export for serving and devices: SavedModel with its signatures, TFLite variants, verified.

The SavedModel and its signatures (``serving_default`` on pixels, ``embed_encoded`` on encoded
image bytes, ``embed_flip``) are those of :mod:`facenet_tf.models.writer`; they return unit-norm
embeddings, except for models whose output is not normalised (an imported dlib network). A model
recording dlib's alignment also gets ``detect_and_embed`` (photo bytes → every face's box and
embedding, :mod:`facenet_tf.serving.detect_and_embed`), checked against the Python pipeline
(:mod:`facenet_tf.serving.graph_check`); ``max_faces`` 0 leaves it out.

:func:`export_model` (what ``facenet-tf export`` runs) writes one directory::

    OUTPUT/                     a SavedModel directory (TF Serving: models/<name>/<version>)
      saved_model.pb, variables/, fingerprint.pb
      assets/metadata.json      the training run's metadata (thresholds, fingerprint, ...)
      tflite/<variant>.tflite   the requested TFLite variants (see facenet_tf.serving.tflite);
                                detect_and_embed.tflite where LiteRT runs it (today: never)
      export.json               what was checked against the Keras model, and the figures

Every artefact is reloaded the way a user would load it and compared with the Keras model
on a fixed batch; the export fails (and leaves nothing at OUTPUT) if one is off by more than
its tolerance. The directory is built as a temporary sibling and moved into place, so an
interrupted export leaves the previous version intact. The output folder is claimed
(:mod:`facenet_tf.ownership`): a folder of the user's files is refused (or, with
``--allow-existing-files``, written beside them), and only the previous export's own entries are
ever replaced.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from facenet_tf.serving import detect_and_embed as graph_lib
from facenet_tf.serving import tflite as tflite_lib
from facenet_tf.artifacts import METADATA_FILE, check_loaded_model, write_json
from facenet_tf.data import images as image_ops
from facenet_tf.data.catalog import IMAGE_EXTENSIONS
from facenet_tf.errors import FacenetError
from facenet_tf.ownership import claim
from facenet_tf.publication import staged
from facenet_tf.models.contract import ModelContract, minimal
from facenet_tf.models.loader import model_image_size
from facenet_tf.models.writer import require_finite_weights, write_saved_model
from facenet_tf.serving.export_config import ExportConfig

logger = logging.getLogger("facenet_tf")

EXPORT_FILE = "export.json"
TFLITE_DIR = "tflite"
#: Top-level names an export writes in its folder (its ownership entries).
EXPORT_ENTRIES = ("saved_model.pb", "variables", "assets", "fingerprint.pb", TFLITE_DIR, EXPORT_FILE)
#: Minimum cosine similarity of the SavedModel's signatures to the Keras model.
SAVED_MODEL_MIN_COSINE = 0.99999
#: Largest allowed | ||embedding|| - 1 | of any artefact: distance thresholds assume unit norm.
MAX_NORM_ERROR = 1e-3


@dataclasses.dataclass(frozen=True)
class ArtefactCheck:
    """One artefact compared with the Keras model on the check batch.

    Attributes:
        name: e.g. ``"saved_model:serving_default"`` or ``"tflite:int8"``.
        path: file or directory, relative to the export directory.
        size_mb: on disk, MB (10^6 bytes).
        max_abs_diff: largest |artefact - Keras| over all embedding components.
        min_cosine: smallest cosine similarity of an artefact embedding to the Keras one.
        max_norm_error: largest | ||embedding|| - 1 | for unit-norm models; for models whose
            output is not normalised (imported dlib), largest | ||embedding|| / ||Keras|| - 1 |.
        max_norm_error_allowed: :data:`MAX_NORM_ERROR` for unit-norm models (thresholds
            assume unit norm); for the others ``max(MAX_NORM_ERROR, 2 (1 - min_cosine_required))``,
            the scale error that goes with the variant's direction tolerance.
        min_cosine_required: the tolerance it had to meet.
    """

    name: str
    path: str
    size_mb: float
    max_abs_diff: float
    min_cosine: float
    max_norm_error: float
    min_cosine_required: float
    max_norm_error_allowed: float = MAX_NORM_ERROR

    @property
    def passed(self) -> bool:
        return self.min_cosine >= self.min_cosine_required and self.max_norm_error <= self.max_norm_error_allowed

    def to_json_dict(self) -> Dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclasses.dataclass
class ExportReport:
    """What :func:`export_model` wrote and measured (also written as ``export.json``)."""

    output: str
    checks: List[ArtefactCheck]
    info: Dict[str, Any]

    def to_json_dict(self) -> Dict[str, Any]:
        return {**self.info, "checks": [c.to_json_dict() for c in self.checks]}


def load_keras_model(model: str) -> Tuple[keras.Model, ModelContract, str]:
    """The Keras model and contract behind ``model``: any form of :func:`facenet_tf.models.loader.locate`.

    Returns:
        ``(model, contract, keras_path)``; the contract is the model's ``metadata.json``,
        or a minimal one (image size, embedding size, fingerprint) when there is none.

    Raises:
        FacenetError: no model there, or a ``metadata.json`` whose fingerprint
            belongs to other weights.
    """
    from facenet_tf.models.loader import load_keras

    keras_model, artifact = load_keras(model)
    contract = artifact.contract
    path = artifact.keras_path or artifact.saved_model_path
    fingerprint = check_loaded_model(keras_model.get_weights(), f"model {model}",
                                     recorded=contract.fingerprint if contract is not None else None, path=path)
    if contract is None:
        logger.warning("no %s beside %s: exporting without thresholds or training summary", METADATA_FILE, path)
        reference = keras_model(np.zeros((1, *model_image_size(keras_model), 3), np.float32), training=False)
        contract = minimal(keras_model.name, model_image_size(keras_model), int(keras_model.output_shape[-1]),
                           fingerprint, normalized=bool(np.allclose(np.linalg.norm(reference), 1.0, atol=MAX_NORM_ERROR)))
    return keras_model, contract, path


def sample_images(contract: ModelContract, image_size: Tuple[int, int], config: ExportConfig):
    """Calibration and check images for the model.

    From ``config.representative_data``, else the training folder named in the metadata
    (when it exists here), else synthetic identities (the generator training uses by
    default). With more than ``num_check`` images the check batch is kept apart from
    calibration; otherwise both use every image.

    Returns:
        ``(calibration uint8 [M,H,W,3], check uint8 [n,H,W,3], description)``.
    """
    wanted = config.num_representative + config.num_check
    folder = config.representative_data
    if folder is None:
        data_dir = ((contract.provenance.config or {}).get("data") or {}).get("data_dir")
        folder = data_dir if data_dir and os.path.isdir(data_dir) else None
    if folder is not None:
        paths = sorted(
            os.path.join(root, name)
            for root, _, names in os.walk(folder)
            for name in names
            if name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if not paths:
            raise FacenetError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) under {folder}")
        rng = np.random.default_rng(config.seed)
        chosen = [paths[i] for i in sorted(rng.permutation(len(paths))[:wanted])]
        images = image_ops.load_images(chosen, image_size)
        description = f"{len(images)} images from {folder}"
    else:
        from facenet_tf.data import synthetic_identities

        images, _ = synthetic_identities(-(-wanted // 4), 4, image_size, seed=config.seed)
        images = np.random.default_rng(config.seed).permutation(images)[:wanted]
        description = f"{len(images)} synthetic identity images (seed {config.seed})"
    if len(images) > config.num_check:
        return images[config.num_check:], images[:config.num_check], description
    return images, images, description


def _compare(name: str, path: str, size_mb: float, got: np.ndarray, want: np.ndarray, required: float) -> ArtefactCheck:
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    norms, want_norms = np.linalg.norm(got, axis=1), np.linalg.norm(want, axis=1)
    cosine = np.sum(got * want, axis=1) / np.maximum(norms * want_norms, 1e-12)
    unit = np.allclose(want_norms, 1.0, atol=MAX_NORM_ERROR)  # a unit-norm model must stay one
    norm_error = np.abs(norms - 1.0) if unit else np.abs(norms / np.maximum(want_norms, 1e-12) - 1.0)
    allowed = MAX_NORM_ERROR if unit else max(MAX_NORM_ERROR, 2.0 * (1.0 - required))
    return ArtefactCheck(name, path, round(size_mb, 4), float(np.max(np.abs(got - want))), float(np.min(cosine)),
                         float(np.max(norm_error)), required, allowed)


def _size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 1e6
    return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files) / 1e6


def flip_reference(keras_model, check: np.ndarray, normalized: bool) -> np.ndarray:
    """What ``embed_flip`` must return: the mean of the Keras embeddings of ``check`` and its
    mirror, re-normalised when the contract says the embeddings are unit-norm."""
    mean = (keras_model(check.astype(np.float32), training=False).numpy()
            + keras_model(check[:, :, ::-1].astype(np.float32), training=False).numpy()) / 2
    return mean / np.linalg.norm(mean, axis=1, keepdims=True) if normalized else mean


def _saved_model_checks(tmp: str, check: np.ndarray, reference: np.ndarray,
                        flipped: Optional[np.ndarray] = None) -> List[ArtefactCheck]:
    """Reload the SavedModel as a server would and run its signatures on the check batch
    (``embed_flip`` against ``flipped`` when given)."""
    loaded = tf.saved_model.load(tmp)
    size = _size_mb(os.path.join(tmp, "saved_model.pb")) + _size_mb(os.path.join(tmp, "variables"))
    pixels = loaded.signatures["serving_default"](images=tf.constant(check, tf.float32))["embeddings"].numpy()
    # PNG is lossless, so the encoded path must reproduce the pixel path's embeddings.
    encoded = tf.stack([tf.io.encode_png(image) for image in tf.constant(check, tf.uint8)])
    from_bytes = loaded.signatures["embed_encoded"](image_bytes=encoded)["embeddings"].numpy()
    checks = [
        _compare("saved_model:serving_default", ".", size, pixels, reference, SAVED_MODEL_MIN_COSINE),
        _compare("saved_model:embed_encoded (PNG)", ".", size, from_bytes, reference, SAVED_MODEL_MIN_COSINE),
    ]
    if flipped is not None:
        tta = loaded.signatures["embed_flip"](images=tf.constant(check, tf.float32))["embeddings"].numpy()
        checks.append(_compare("saved_model:embed_flip (TTA)", ".", size, tta, flipped, SAVED_MODEL_MIN_COSINE))
    return checks


def export_model(model: str, output: str, config: ExportConfig = ExportConfig(),
                 allow_existing_files: bool = False) -> ExportReport:
    """Export a trained model for serving and devices, verify every artefact, write atomically.

    Args:
        model: training output directory (``model.keras`` + ``metadata.json``) or a
            ``.keras`` file.
        output: directory to write (see the module docstring for its layout). A previous
            export there is replaced only once the new one has passed every check.
        config: TFLite variants, representative images and tolerances.
        allow_existing_files: write into a folder holding files ``export`` did not write,
            beside them (:mod:`facenet_tf.ownership`; none of them is touched).

    Returns:
        :class:`ExportReport` with one :class:`ArtefactCheck` per artefact.

    Raises:
        FacenetError: bad arguments, an unloadable model, ``ai-edge-litert`` missing when
            TFLite variants are requested, or an artefact below its tolerance (then
            nothing is left at ``output``; a previous export there is untouched).
    """
    config.validate()
    variants = config.variants()
    output = os.path.abspath(output)
    source = os.path.abspath(model)
    if output == source or source.startswith(output + os.sep):
        raise FacenetError(f"--output {output!r} would replace the model being exported ({source}); choose another path")
    if os.path.isfile(output):
        raise FacenetError(f"--output {output!r} is a file; expected a directory path")
    owner = claim(output, "export", EXPORT_ENTRIES, allow_existing=allow_existing_files, inputs=[model], create=False)
    if variants:
        _require_litert()  # before minutes of conversion, not after

    keras_model, contract, keras_path = load_keras_model(model)
    require_finite_weights(keras_model, f"--model {model}")
    image_size = model_image_size(keras_model)
    calibration, check, data_description = sample_images(contract, image_size, config)
    reference = keras_model(check.astype(np.float32), training=False).numpy()
    norm = "unit L2 norm" if np.allclose(np.linalg.norm(reference, axis=1), 1.0, atol=MAX_NORM_ERROR) else "not normalised"

    with staged(owner) as tmp:  # published by ownership: only a previous export's own entries are replaced
        report = _write_verified(keras_model, tmp, contract, check, reference, calibration, variants, config,
                                 keras_path, data_description, image_size, norm, output)
    return report


def _write_verified(keras_model, tmp, contract, check, reference, calibration, variants, config, keras_path,
                    data_description, image_size, norm, output) -> "ExportReport":
    """Write and check every artefact in ``tmp``; raise (nothing published) if one fails."""
    graph, graph_info = graph_lib.for_export(keras_model, contract, config.max_faces)
    endpoints = {graph_lib.SIGNATURE: (graph.__call__, graph.input_signature())} if graph is not None else None
    write_saved_model(keras_model, tmp, contract, endpoints)
    checks = _saved_model_checks(tmp, check, reference, flip_reference(keras_model, check, contract.normalized))
    if graph is not None:
        samples = _graph_samples(keras_model, contract, check)
        graph_check, graph_info = _graph_check(tmp, samples, config.max_faces, graph_info)
        checks.extend(graph_check)
    if variants:
        os.makedirs(os.path.join(tmp, TFLITE_DIR))
    for variant in variants:
        relative = os.path.join(TFLITE_DIR, f"{variant}.tflite")
        with open(os.path.join(tmp, relative), "wb") as f:
            f.write(tflite_lib.convert(tmp, variant, calibration))
        embed = tflite_lib.embedder(os.path.join(tmp, relative))
        checks.append(_compare(f"tflite:{variant}", relative, _size_mb(os.path.join(tmp, relative)),
                               embed(check.astype(np.float32)), reference, config.min_cosine(variant)))
    if graph is not None and variants:
        graph_info = {**graph_info, "tflite": _graph_tflite(tmp, samples, config.max_faces)}
    report = ExportReport(output, checks, {
        "format": "facenet_tf.export/1",
        "source": os.path.abspath(keras_path),
        "fingerprint": contract.fingerprint,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
        "check_images": f"{len(check)} of {data_description}",
        "int8_calibration_images": len(calibration) if "int8" in variants else 0,
        "signatures": {
            "serving_default": {"inputs": {"images": f"float32 [N, {image_size[0]}, {image_size[1]}, 3], RGB 0..255"},
                                "outputs": {"embeddings": f"float32 [N, {contract.embedding_dim}], {norm}"}},
            "embed_encoded": {"inputs": {"image_bytes": "string [N], encoded JPEG/PNG/GIF/BMP, any size"},
                              "outputs": {"embeddings": f"float32 [N, {contract.embedding_dim}], {norm}"}},
            "embed_flip": {"inputs": {"images": f"float32 [N, {image_size[0]}, {image_size[1]}, 3], RGB 0..255"},
                           "outputs": {"embeddings": f"float32 [N, {contract.embedding_dim}], mean of the image's "
                                                     f"and its mirror's, {norm}"}},
        },
        graph_lib.SIGNATURE: graph_info,
        "tflite_io": "every variant: input 'images' float32 [N,H,W,3] RGB 0..255, output 'embeddings' float32 "
                     "[N,D]; int8 has int8 weights and activations except the float32 input standardisation "
                     "and output L2 normalisation, with quantise/dequantise ops between",
    })
    failed = [c for c in checks if not c.passed]
    if failed:
        raise FacenetError("export verification failed, nothing written: " + "; ".join(
            f"{c.name} min cosine {c.min_cosine:.6f} (needs >= {c.min_cosine_required}), "
            f"max abs diff {c.max_abs_diff:.3g}, max norm error {c.max_norm_error:.3g} (allowed {c.max_norm_error_allowed:.3g})"
            for c in failed
        ))
    write_json(os.path.join(tmp, EXPORT_FILE), report.to_json_dict())
    return report


def _graph_samples(keras_model, contract, check: np.ndarray):
    """``(encoded PNG photos, the Python pipeline's faces of each)``: the sample photos made of the
    check images (:mod:`facenet_tf.serving.graph_check`) that every form of ``detect_and_embed`` is
    checked on, run through the Python pipeline once."""
    from facenet_tf.serving import graph_check

    photos = graph_check.sample_photos(np.clip(np.round(check), 0, 255).astype(np.uint8))
    return graph_check.encode_png(photos), graph_check.pipeline_faces(keras_model, contract, photos)


def _graph_check(tmp: str, samples, max_faces: int, info: Dict[str, Any]):
    """The reloaded ``detect_and_embed`` against the Python pipeline on ``samples``
    (:func:`_graph_samples`): ``([ArtefactCheck] of the embeddings, the report entry with the figures)``.

    Raises:
        FacenetError: the faces differ (one line).
    """
    from facenet_tf.serving import graph_check

    encoded, want = samples
    signature = tf.saved_model.load(tmp).signatures[graph_lib.SIGNATURE]
    got = {k: v.numpy() for k, v in signature(images=tf.constant(encoded)).items()}
    embeddings, expected, figures = graph_check.compare(got, want, max_faces)
    # A request without any face (the last photo alone) runs no model and must answer zeros.
    alone = {k: v.numpy() for k, v in signature(images=tf.constant(encoded[-1:])).items()}
    graph_check.compare(alone, want[-1:], max_faces)
    info = {**info, "check": {**figures, "reference": "the Python pipeline, --detector dlib_cnn",
                              "min_cosine_required": graph_check.MIN_COSINE}}
    if not len(embeddings):
        logger.warning("%s was checked on photos without a face (no face among the check images): pass "
                       "--representative-data a folder of face photos to compare its embeddings", graph_lib.SIGNATURE)
        return [], info
    size = _size_mb(os.path.join(tmp, "saved_model.pb")) + _size_mb(os.path.join(tmp, "variables"))
    return [_compare(f"saved_model:{graph_lib.SIGNATURE}", ".", size, embeddings, expected, graph_check.MIN_COSINE)], info


def _graph_tflite(tmp: str, samples, max_faces: int) -> Dict[str, Any]:
    """Try ``detect_and_embed`` as TFLite (TensorFlow ops allowed) run by LiteRT on ``samples``
    (:func:`_graph_samples`).
    Written (``tflite/detect_and_embed.tflite``) only when LiteRT runs it and it finds the pipeline's
    faces; otherwise the entry says which ops stopped it (the chip-input variants stay)."""
    from facenet_tf.serving import graph_check

    try:
        encoded, want = samples
        model = tflite_lib.convert_with_tf_ops(tmp, graph_lib.SIGNATURE)
        got = tflite_lib.run_with_litert(model, graph_lib.SIGNATURE, {
            graph_lib.INPUT_NAME: np.array(encoded, dtype=object)})
        embeddings, expected, _ = graph_check.compare(got, want, max_faces)
    except FacenetError as err:
        logger.warning("%s: no TFLite file (%s); the chip-input TFLite variants stay", graph_lib.SIGNATURE, err)
        return {"written": False, "reason": str(err)}
    relative = os.path.join(TFLITE_DIR, f"{graph_lib.SIGNATURE}.tflite")
    with open(os.path.join(tmp, relative), "wb") as f:
        f.write(model)
    check_entry = _compare(f"tflite:{graph_lib.SIGNATURE}", relative, len(model) / 1e6, embeddings, expected,
                           graph_check.MIN_COSINE)
    if not check_entry.passed:
        os.remove(os.path.join(tmp, relative))
        return {"written": False, "reason": f"LiteRT's embeddings drift (min cosine {check_entry.min_cosine:.6f})"}
    return {"written": True, "path": relative, "min_cosine": check_entry.min_cosine}


def _require_litert() -> None:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        raise FacenetError(
            "TFLite export verifies each file with ai-edge-litert: pip install 'facenet_tf[tflite]' "
            "(or pip install ai-edge-litert), or export without --tflite"
        ) from None
