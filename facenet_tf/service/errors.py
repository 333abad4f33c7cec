"""Every failure of a request as a 4xx JSON body ``{"error": "one line"}``.

:func:`install` registers FastAPI exception handlers for the project's
:class:`~facenet_tf.errors.FacenetError` (with the status :func:`status_of` gives it),
FastAPI's request validation (a missing field), Starlette's HTTP errors (unknown route,
malformed multipart body) and, as the last resort, anything else (500, logged with its
traceback, the body still one line).
"""

from __future__ import annotations

import logging

from facenet_tf.data.reader import BadImage
from facenet_tf.errors import FacenetError

log = logging.getLogger("facenet_tf.service")


class RequestError(FacenetError):
    """A mistake in a request, with the HTTP status that answers it (default 400)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def status_of(err: FacenetError) -> int:
    """413 for a photo beyond the pixel limit, a :class:`RequestError`'s own status, else 400."""
    if isinstance(err, RequestError):
        return err.status
    if isinstance(err, BadImage) and err.reason == "too_large":
        return 413
    return 400


def one_line(text: str) -> str:
    return (str(text).strip().splitlines() or ["error"])[0]


def error_response(status: int, message: str, headers=None):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": one_line(message)}, status_code=status, headers=headers)


def validation_message(errors) -> str:
    """FastAPI's validation errors as one line: ``missing field 'image'``, ``name: ...``."""
    parts = []
    for error in errors:
        where = [str(x) for x in error.get("loc", ()) if x not in ("body", "path", "query", "header")]
        field = ".".join(where) or "request"
        if error.get("type") == "missing":
            parts.append(f"missing field {field!r}")
        else:
            parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install(app) -> None:
    """Register the handlers on a FastAPI ``app``."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    @app.exception_handler(FacenetError)
    async def facenet_error(request, err: FacenetError):
        return error_response(status_of(err), str(err))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, err: RequestValidationError):
        return error_response(422, validation_message(err.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):
        return error_response(err.status_code, str(err.detail), getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request, err: Exception):
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(err).__name__}); see the server's log")
