"""Face geometry: detection, landmarks, one similarity transform, chip templates and alignment.

Where each kind of change goes:

* ``templates``: where landmarks land on an aligned chip (ArcFace's 112×112 template, dlib's
  5-point chip template, MTCNN's points on dlib's box). A new chip layout goes here.
* ``transform``: the one least-squares similarity transform (Umeyama, as dlib's
  ``find_similarity_transform``) and the template warp; its rule for degenerate input lives here.
* ``chips``: dlib's chip extraction (``get_face_chip_details`` + ``extract_image_chip``),
  bit-identical to ``dlib.get_face_chip``. Change resampling here only against dlib-bin.
* ``detection``: the MTCNN detector wrapper (its networks as TensorFlow graphs, batches per
  image shape) and :class:`~facenet_tf.faces.detection.Face` (a
  face's box, score, five landmarks and, from dlib's detector, the rectangle dlib's predictor
  takes). ``detectors``: the detectors by name (``--detector mtcnn|dlib_hog|dlib_cnn|dlib_hog_cnn``). A new detector
  is one registration in ``detectors``.
* ``aligner``: :class:`~facenet_tf.faces.aligner.AlignConfig` (how faces are cropped) and
  :class:`~facenet_tf.faces.aligner.FaceAligner` (detector → landmarks → chip), and
  ``align_files`` (a list of files → aligned pixels); ``chunked`` runs that chunk by chunk,
  prepared ahead in a thread or, for a detector holding the GIL (dlib's HOG), in worker
  processes. How folders are parallelised goes here.
* ``found``: every face of an image with its landmarks and chip, the evidence rule that lets a
  tight crop without a detected face keep one ("no face, no answer"), bounded-size decoding.
* ``overrides``: the ``--align-method``/``--face``/``--detector`` overrides of a recorded
  alignment and the fingerprint suffix of an alignment that is not the model's own.
* ``folder``: the ``align`` use case, an aligned copy of an identity folder.
* ``shape_predictor``: dlib's 5-point landmark predictor in NumPy (its own module); it reads the
  68-point file too. ``landmarks68``: that file's place and dlib's chip from 68 points, behind
  the opt-in, non-commercial ``dlib_landmarks68`` method (registered in ``methods``).
* ``hog_detector``: dlib's HOG frontal face detector in NumPy (boxes equal to dlib-bin's), its
  filters in ``frontal_face_detector.npz``; ``fhog`` holds the image pyramid and fHOG features
  it scans, bit-identical to dlib's; the ``dlib_hog`` detector.
* ``cnn_detector``: dlib's CNN (MMOD) face detector as a Keras network over dlib's image pyramid
  built in TensorFlow (boxes equal to dlib-bin's); the ``dlib_cnn`` detector.
* ``shape_predictor_graph``, ``chips_graph``: the 5-point predictor and dlib's chips in
  TensorFlow ops (for the ``detect_and_embed`` serving graph), equal to their NumPy versions;
  a change to ``shape_predictor`` or ``chips`` arithmetic is mirrored there.
* ``dlib_files``: where the packaged dlib model files are and reading one's bytes;
  ``dlib_format``: dlib's DNN files read with NumPy (the CNN detector's and
  :mod:`facenet_tf.pretrained`'s ResNet).

Nothing here imports dlib or :mod:`facenet_tf.serving`; the optional ``mtcnn`` package is imported
where it is used. The aligning embedder is :mod:`facenet_tf.recognition.aligned`.
"""
