"""The bearer token of ``/v1``: a FastAPI dependency comparing in constant time."""

import hmac
from typing import Optional

from fastapi import Request
from starlette.exceptions import HTTPException


def token_check(token: Optional[str]):
    """A dependency for the ``/v1`` router: nothing when ``token`` is ``None``, else 401 unless
    the request carries ``Authorization: Bearer <token>``."""
    expected = None if token is None else token.encode()

    async def check(request: Request) -> None:
        if expected is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # compare_digest takes as long for any wrong token of a given length: no timing hint.
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer TOKEN)",
                                headers={"WWW-Authenticate": "Bearer"})

    return check
