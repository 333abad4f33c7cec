"""One loader for every model form a command accepts.

Every command that takes a model (``evaluate``, ``export``, ``enroll``, ``identify``,
``verify``, ``train --init-from``) resolves it here, so each accepts the same forms:

* a model directory (what ``train`` or ``import-dlib`` writes: ``model.keras``,
  ``saved_model/``, ``metadata.json``),
* a ``.keras`` file (``metadata.json`` beside it is used when present),
* a SavedModel directory (``assets/metadata.json`` inside, or ``metadata.json`` beside it),
* a ``.weights.h5`` file of a model built with a given :class:`ModelConfig` (training
  only: a weights file has no architecture).

:func:`locate` finds the artefact, :func:`load_keras` gives a trainable Keras model,
:func:`load_serving` a callable for embedding. Nothing is downloaded, ever. Importers of
foreign weights (:data:`facenet_tf.models.importers.IMPORTERS`) write a model directory and
are then loaded like any other model; the architecture their contract names tells the
loader which importer's Keras layers to register, so this module imports none of them.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any, Callable, Optional, Tuple


from facenet_tf.artifacts import (KERAS_FILE, METADATA_FILE, SAVED_MODEL_DIR, check_loaded_model, probe_batch,
                                  read_json, recover_model_directory, verified_fingerprint)
from facenet_tf.errors import FacenetError
from facenet_tf.models.contract import ModelContract

#: The Keras architecture (``model.to_json()``) a facenet_tf SavedModel keeps in its assets,
#: so that any architecture (imported ones too) is rebuilt trainable from it.
KERAS_ARCHITECTURE_FILE = "keras_architecture.json"

FORMS = "a model directory (model.keras / saved_model/), a .keras file or a SavedModel directory"


@dataclasses.dataclass(frozen=True)
class ModelArtifact:
    """Where a model path leads.

    Attributes:
        keras_path: the ``.keras`` file, or ``None``.
        saved_model_path: the SavedModel directory, or ``None``.
        weights_path: a ``.weights.h5`` file, or ``None``.
        contract: the model's :class:`ModelContract` (its ``metadata.json``), or ``None``
            when there is none.
        metadata_path: where it was read from, or ``None``.
    """

    keras_path: Optional[str] = None
    saved_model_path: Optional[str] = None
    weights_path: Optional[str] = None
    contract: Optional[ModelContract] = None
    metadata_path: Optional[str] = None


def locate(path: str, what: str = "--model") -> ModelArtifact:
    """Find what is loadable at ``path``.

    Raises:
        FacenetError: ``path`` missing (facenet_tf never downloads), or nothing loadable there.
    """
    if not os.path.exists(path):
        raise FacenetError(f"no model at {path!r} ({what}: not found): pass a local {FORMS.replace('a model', 'model', 1)} "
                           f"(facenet_tf never downloads models)")
    if os.path.isdir(path):
        recover_model_directory(path)  # finish a publication a kill interrupted
    keras_path = saved = weights = None
    meta_candidates = []
    if os.path.isfile(path):
        if path.endswith(".keras"):
            keras_path = path
        elif path.endswith(".h5"):
            weights = path
        else:
            raise FacenetError(f"{what} {path!r}: expected {FORMS}, or a .weights.h5 file")
        meta_candidates.append(os.path.join(os.path.dirname(path), METADATA_FILE))
    elif os.path.isfile(os.path.join(path, "saved_model.pb")):
        saved = path
        meta_candidates += [os.path.join(path, "assets", METADATA_FILE),
                            os.path.join(os.path.dirname(path.rstrip("/")), METADATA_FILE)]
    else:
        if os.path.isfile(os.path.join(path, KERAS_FILE)):
            keras_path = os.path.join(path, KERAS_FILE)
        if os.path.isfile(os.path.join(path, SAVED_MODEL_DIR, "saved_model.pb")):
            saved = os.path.join(path, SAVED_MODEL_DIR)
        meta_candidates.append(os.path.join(path, METADATA_FILE))
    if not (keras_path or saved or weights):
        raise FacenetError(f"no model at {path!r}: expected {FORMS}")
    meta_path = next((m for m in meta_candidates if os.path.isfile(m)), None)
    contract = read_contract(meta_path) if meta_path else None
    return ModelArtifact(keras_path, saved, weights, contract, meta_path)


def read_contract(path: str) -> ModelContract:
    """The :class:`ModelContract` in the ``metadata.json`` at ``path``.

    Raises:
        FacenetError: unreadable, not JSON, or not a facenet_tf contract.
    """
    try:
        values = read_json(path)
    except (ValueError, OSError) as err:
        raise FacenetError(f"cannot read {path}: {err}") from None
    return ModelContract.from_json(values, where=path)


def register_custom_objects() -> None:
    """Register the Keras layers a saved facenet_tf model may contain: the embedding
    model's own, and every importer's (the importers' table imports their modules)."""
    import facenet_tf.models.embedding  # noqa: F401 - Standardize
    from facenet_tf.models.importers import IMPORTERS

    IMPORTERS.names()


def read_keras_file(path: str):
    """``keras.saving.load_model`` with one-line errors for corrupt or foreign files."""
    import keras

    register_custom_objects()
    problem = _keras_file_problem(path)
    if problem:
        raise FacenetError(f"cannot load Keras model {path}: {problem}")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as err:  # noqa: BLE001 - a corrupt or foreign file is the user's
        raise FacenetError(f"cannot load Keras model {path}: {str(err).splitlines()[0]}") from None


def _keras_file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be a ``.keras`` file (a zip archive), in the user's terms, or ``None``:
    Keras itself calls a truncated file "File not found"."""
    import zipfile

    try:
        size = os.path.getsize(path)
        if size == 0:
            return "the file is empty (0 bytes)"
        if not zipfile.is_zipfile(path):
            return (f"the file ({size} bytes) is not a whole .keras archive: truncated (an interrupted copy or "
                    "download?) or not a Keras model")
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except OSError as err:
        return err.strerror or str(err)
    except zipfile.BadZipFile as err:
        return f"the .keras archive is damaged ({err})"
    if damaged is not None:
        return f"the .keras archive is damaged (its member {damaged} fails its checksum)"
    return None


def metadata_of(path: str) -> Optional[str]:
    """The ``metadata.json`` describing the artifact a model was loaded from (a ``.keras`` file or
    a SavedModel folder, as :func:`load_serving`'s ``path``), found as :func:`locate` finds it;
    ``None`` when there is none."""
    if os.path.isfile(path):
        candidates = [os.path.join(os.path.dirname(path), METADATA_FILE)]
    else:
        candidates = [os.path.join(path, "assets", METADATA_FILE),
                      os.path.join(os.path.dirname(path.rstrip("/")), METADATA_FILE), os.path.join(path, METADATA_FILE)]
    return next((c for c in candidates if os.path.isfile(c)), None)


def load_keras(path: str, model_config=None, checkpoint_wrapper: Optional[Callable] = None,
               what: str = "--model") -> Tuple[Any, ModelArtifact]:
    """A trainable Keras model from ``path``, and the :class:`ModelArtifact` it came from.

    A ``.keras`` model (a model directory's own, preferably) is loaded as is. A SavedModel
    written by facenet_tf carries its weights in model order (``model_weights``) and its
    architecture in its metadata: the same model is rebuilt. Any other SavedModel with a
    ``serving_default`` signature becomes a frozen feature extractor
    (``keras.layers.TFSMLayer``) under a new trainable embedding head of
    ``model_config.embedding_dim``. A ``.weights.h5`` file is loaded into
    ``build_embedding_model(model_config)``, or, when the file is a training checkpoint,
    into ``checkpoint_wrapper(model)`` (the trainer that wrote it).

    Args:
        path: any form :func:`locate` accepts.
        model_config: :class:`facenet_tf.models.ModelConfig` for weights files and
            foreign SavedModels.
        checkpoint_wrapper: ``model -> built keras.Model`` with the checkpoint's layout.
        what: the flag named in errors.

    Raises:
        FacenetError: nothing loadable, a corrupt file, weights that do not fit, or weights or
            output on a probe batch that are not finite.
    """
    artifact = locate(path, what)
    if artifact.keras_path:
        model = read_keras_file(artifact.keras_path)
    elif artifact.weights_path:
        if model_config is None:
            raise FacenetError(f"{what} {path!r} is a weights file: it needs the model's architecture (training only)")
        model = _load_weights(artifact.weights_path, model_config, checkpoint_wrapper, what)
    else:
        model = _model_from_saved_model(artifact, model_config, what)
    verified_fingerprint(model.get_weights(), f"{what} {path}", lambda: model(probe_batch(model_image_size(model)),
                                                                             training=False))  # facenet_tf.artifacts
    return model, artifact


def _load_weights(path: str, model_config, checkpoint_wrapper, what: str):
    import h5py  # Keras' own dependency for .weights.h5

    from facenet_tf.models.embedding import build_embedding_model

    model = build_embedding_model(model_config)
    try:
        with h5py.File(path, "r") as f:
            is_checkpoint = "embedder" in f  # a training checkpoint: the trainer wrapping the model
    except OSError as err:
        raise FacenetError(f"{what} {path!r} is not a Keras weights file: {err}") from None
    target = model
    if is_checkpoint:
        if checkpoint_wrapper is None:
            raise FacenetError(f"{what} {path!r} is a training checkpoint; load it with train --init-from")
        target = checkpoint_wrapper(model)
    try:
        with warnings.catch_warnings():
            # Keras only warns when parts of a file do not match and keeps those layers'
            # fresh weights: a half-initialised model, so treat it as the mismatch it is.
            warnings.filterwarnings("error", message="Skipping nested container")
            target.load_weights(path)
    except Exception as err:  # noqa: BLE001 - a mismatching file is the user's mistake
        raise FacenetError(f"{what} {path!r} does not fit a {model_config.backbone} model "
                           f"built with this ModelConfig: {str(err).splitlines()[0]}") from None
    return model


def _load_saved_model(path: str):
    import tensorflow as tf

    try:
        return tf.saved_model.load(path)
    except Exception as err:  # noqa: BLE001 - a corrupt saved_model.pb is the user's
        raise FacenetError(f"cannot load SavedModel {path}: {str(err).splitlines()[0]}") from None


def _model_from_saved_model(artifact: ModelArtifact, model_config, what: str):
    import keras

    path, contract = artifact.saved_model_path, artifact.contract
    loaded = _load_saved_model(path)
    if hasattr(loaded, "model_weights") and contract is not None:
        model = _rebuild(path, contract, what)
        weights = [v.numpy() for v in loaded.model_weights]
        if [w.shape for w in weights] != [tuple(w.shape) for w in model.weights]:
            raise FacenetError(f"{what} {path!r}: its weights do not match a {contract.architecture} model")
        model.set_weights(weights)
        return model
    if model_config is None:
        raise FacenetError(f"{what} {path!r} is a SavedModel without facenet_tf metadata; pass its model directory")
    size = tuple(model_config.image_size)
    inputs = keras.Input((*size, 3), dtype="float32", name="images")
    features = keras.layers.TFSMLayer(path, call_endpoint="serving_default", trainable=False, name="pretrained")(inputs)
    if isinstance(features, dict):
        features = next(iter(features.values()))
    x = keras.layers.Dense(model_config.embedding_dim, name="embedding")(features)
    outputs = keras.layers.UnitNormalization(axis=-1, name="l2_normalize", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="facenet_on_savedmodel")


def _rebuild(path: str, contract: ModelContract, what: str):
    """The untrained Keras model a facenet_tf SavedModel's weights belong to: from the
    architecture JSON in its assets, else (older exports) built from the contract's backbone."""
    import keras

    from facenet_tf.models.backbones import BACKBONES
    from facenet_tf.models.embedding import ModelConfig, build_embedding_model

    stored = os.path.join(path, "assets", KERAS_ARCHITECTURE_FILE)
    if os.path.isfile(stored):
        register_custom_objects()
        try:
            with open(stored) as f:
                return keras.models.model_from_json(f.read())
        except Exception as err:  # noqa: BLE001 - a damaged asset is the user's file
            raise FacenetError(f"{what} {path!r}: cannot rebuild its architecture: {str(err).splitlines()[0]}") from None
    if contract.architecture not in BACKBONES:
        raise FacenetError(f"{what} {path!r}: a {contract.architecture} SavedModel without its architecture file; "
                           "pass its model directory")
    return build_embedding_model(ModelConfig(backbone=contract.architecture, embedding_dim=contract.embedding_dim,
                                             image_size=tuple(contract.image_size)))


@dataclasses.dataclass
class ServingModel:
    """A loaded model ready to embed: ``fn(float32 [N,H,W,3] pixels) -> [N, D]``."""

    fn: Callable
    image_size: Tuple[int, int]
    embedding_dim: int
    contract: ModelContract
    fingerprint: str
    path: str


def load_serving(path: str, what: str = "--model") -> ServingModel:
    """Load ``path`` for inference: a model directory's SavedModel (else its ``.keras``),
    a SavedModel directory or a ``.keras`` file.

    The fingerprint is that of the weights loaded (checked against the contract's), and a
    model whose weights or output on a probe batch are not finite is refused.

    Raises:
        FacenetError: nothing loadable there, a corrupt file, non-finite weights or output, or a
            recorded fingerprint of other weights.
    """
    import tensorflow as tf

    from facenet_tf.models import contract as contracts

    artifact = locate(path, what)
    if artifact.saved_model_path:
        loaded = _load_saved_model(artifact.saved_model_path)
        if "serving_default" not in loaded.signatures:
            raise FacenetError(f"SavedModel {artifact.saved_model_path!r} has no serving_default signature")
        signature = loaded.signatures["serving_default"]
        spec = list(signature.structured_input_signature[1].values())[0]
        size = (int(spec.shape[1]), int(spec.shape[2]))
        dim = int(list(signature.structured_outputs.values())[0].shape[-1])
        fn = lambda x: list(signature(tf.convert_to_tensor(x)).values())[0]  # noqa: E731
        variables = list(getattr(loaded, "model_weights", None) or getattr(loaded, "variables", None) or [])
        fingerprint = check_loaded_model([v.numpy() for v in variables], f"{what} {path}",  # facenet_tf.artifacts
                                         lambda: fn(probe_batch(size)),
                                         artifact.contract.fingerprint if artifact.contract else None,
                                         artifact.saved_model_path)
        contract = artifact.contract or contracts.minimal("unknown", size, dim, fingerprint)
        fn.keep_alive = loaded
        return ServingModel(fn, size, dim, contract, fingerprint, artifact.saved_model_path)
    if not artifact.keras_path:
        raise FacenetError(f"{what} {path!r} is a weights file; pass a model directory, .keras file or SavedModel")
    model = read_keras_file(artifact.keras_path)
    size = (int(model.input_shape[1]), int(model.input_shape[2]))
    fingerprint = check_loaded_model(model.get_weights(), f"{what} {path}",  # facenet_tf.artifacts
                                     lambda: model(probe_batch(size), training=False),
                                     artifact.contract.fingerprint if artifact.contract else None, artifact.keras_path)
    contract = artifact.contract or contracts.minimal(model.name, size, int(model.output_shape[-1]), fingerprint)
    return ServingModel(lambda x: model(x, training=False), size, int(model.output_shape[-1]), contract,
                        fingerprint, artifact.keras_path)


def model_image_size(model) -> Tuple[int, int]:
    """``(H, W)`` that a Keras ``model`` takes."""
    shape = model.input_shape
    return int(shape[1]), int(shape[2])

