"""Faces in video: frames sampled from files or streams (PyAV, extra ``video``) and the timeline of who
appears when.

* :mod:`~facenet_tf.video.source`: :func:`sample_frames`, :class:`AnnotatedVideo`.
* :mod:`~facenet_tf.video.timeline`: :func:`build_timeline` of :class:`Sighting` s.
"""
