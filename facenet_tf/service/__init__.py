"""``facenet-tf serve``: recognition over HTTP (FastAPI), an API and a web page over a gallery.

Needs the ``[serve]`` extra (FastAPI, uvicorn, python-multipart), imported when an app is created.
"""

from facenet_tf.service.app import create_app
from facenet_tf.service.config import ServeConfig

__all__ = ["ServeConfig", "create_app"]
