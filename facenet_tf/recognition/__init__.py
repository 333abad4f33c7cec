"""Photos in, people out: :class:`FaceRecognizer`, the pipeline object above ``faces`` (detection,
alignment), ``serving`` (the model, TTA) and ``gallery`` (enrolled people), none of which imports
it. The command line's ``detect``, ``identify``, ``verify``, ``enroll`` and ``evaluate`` use it
and only parse flags and print.

* ``recognizer``: :class:`FaceRecognizer` (load a model with its policy; ``detect``, ``faces``,
  ``embed_face``, ``embed_files``, ``identify``, ``identify_files``, ``verify``).
* ``results``: what it answers (:class:`DetectedFace`, :class:`RecognizedFace`, :class:`FaceMatch`,
  :class:`PhotoIdentification`, :class:`Verification`).
* ``aligned``: :class:`~facenet_tf.recognition.aligned.AlignedEmbedder` and ``policy_embedder``,
  the one place deciding a model's alignment and TTA.
* ``detect``: faces of files by detector name, without a model (``facenet-tf detect``).
* ``calibration``: ``calibrate_gallery``, a gallery's threshold on labelled people (``gallery calibrate``).
* ``video``: ``identify_video``, the timeline of who appears in a video (``identify --video``).
"""

from facenet_tf.recognition.recognizer import FaceRecognizer
from facenet_tf.recognition.results import (DetectedFace, FaceMatch, PhotoIdentification, RecognizedFace,
                                            Verification)

__all__ = ["DetectedFace", "FaceMatch", "FaceRecognizer", "PhotoIdentification", "RecognizedFace", "Verification"]
