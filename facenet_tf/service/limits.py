"""The request-body limit (``--max-upload-mb``) as a pure ASGI middleware.

FastAPI's own ``max_body_size`` answers a body whose declared length is too large with a
plain-text 413; the API promises ``{"error": ...}`` for every failure, so this middleware
answers it in JSON instead. A declared ``Content-Length`` above the limit is refused before any
byte is read; a body that grows past it while streaming (chunked, or a lying header) stops with
an ``HTTPException`` (413), which FastAPI passes through its body parsing to the app's error
handlers. Nothing beyond the limit is read into memory or spooled to disk.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from facenet_tf.service.errors import error_response


def too_large(limit: int) -> str:
    return f"request body larger than the limit of {limit / 2**20:.3g} MiB (--max-upload-mb)"


class BodyLimit:
    """ASGI middleware refusing HTTP request bodies over ``max_bytes``."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            problem = too_large(self.max_bytes) if declared.isdigit() else "Content-Length is not a number"
            response = error_response(413 if declared.isdigit() else 400, problem, {"Connection": "close"})
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, too_large(self.max_bytes))
            return message

        return await self.app(scope, limited, send)
