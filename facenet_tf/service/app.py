"""The FastAPI application of ``facenet-tf serve``: :func:`create_app`.

Example::

    app = create_app(ServeConfig(model="saved_models/facenet_tf", gallery="staff.gallery"))
    uvicorn.run(app, host="127.0.0.1", port=8000)
"""

from __future__ import annotations

import contextlib
from importlib import resources

from facenet_tf.errors import FacenetError
from facenet_tf.service.config import ServeConfig

EXTRA_HINT = "facenet-tf serve needs the [serve] extra: pip install 'facenet_tf[serve]'"


def require_serve_extra() -> None:
    """Raise one line naming the extra unless FastAPI, uvicorn and python-multipart import."""
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: FastAPI's form parser)
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise FacenetError(f"{EXTRA_HINT} ({err.name} is missing)") from None


def create_app(config: ServeConfig, recognizer=None):
    """The service as a FastAPI app; the model and gallery work starts with the app's lifespan.

    Args:
        config: :class:`ServeConfig` (validated here).
        recognizer: a loaded ``FaceRecognizer``; default: loaded from ``config.model``
            (the model is loaded once, here, not per request).

    Returns:
        ``fastapi.FastAPI``; its lifespan starts and stops the worker thread
        (:class:`~facenet_tf.service.batcher.MicroBatcher`), which finishes queued requests first.

    Raises:
        FacenetError: a bad config, the [serve] extra missing, a model that does not load, a
            gallery of another model or one that cannot be created.
    """
    config.validate()
    require_serve_extra()
    from fastapi import FastAPI

    from facenet_tf.service import auth, errors, routes
    from facenet_tf.service.batcher import MicroBatcher
    from facenet_tf.service.jobs import Recognition
    from facenet_tf.service.limits import BodyLimit

    if recognizer is None:
        from facenet_tf.recognition import FaceRecognizer

        recognizer = FaceRecognizer.load(config.model)
    recognition = Recognition(recognizer, config)
    recognition.open()  # a wrong gallery stops the start-up here, in the caller's thread
    recognition.close()
    batcher = MicroBatcher(recognition.functions(), config.max_batch, config.batch_wait_ms / 1000,
                           setup=recognition.open, teardown=recognition.close)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()

    app = FastAPI(title="facenet_tf", summary="Face recognition over a gallery: enrol, identify, verify",
                  lifespan=lifespan)
    app.state.config, app.state.batcher = config, batcher
    errors.install(app)
    app.include_router(routes.page_router(read_static("index.html"), read_static("app.js")))
    app.include_router(routes.api_router(routes.use(auth.token_check(config.token))))
    if config.cors_origin:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origin), allow_headers=["Authorization"],
                           allow_methods=["GET", "POST", "DELETE"])
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes)
    return app


def read_static(name: str) -> str:
    """A file of the web page (package data ``facenet_tf/service/static/``)."""
    return resources.files("facenet_tf.service").joinpath("static", name).read_text(encoding="utf-8")
