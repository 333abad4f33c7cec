"""facenet_tf: FaceNet-style face embeddings trained with online triplet mining (Keras 3 / TF)."""

__version__ = "0.1.0"
