"""What ``facenet-tf serve`` runs with: :class:`ServeConfig`.

The serve flags are generated from its fields (:mod:`facenet_tf.cli.config_flags`), and
:meth:`ServeConfig.validate` checks the same rules before the model is loaded, including
the one rule of exposure: a server reachable from other machines needs a token.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Optional, Tuple

from facenet_tf import fields
from facenet_tf.data.reader import MAX_PIXELS, ImageLimits
from facenet_tf.errors import FacenetError
from facenet_tf.fields import setting
from facenet_tf.gallery.config import MatchConfig

#: Names a loopback address goes by besides the literal addresses ipaddress knows.
LOOPBACK_NAMES = ("localhost",)


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Options of the HTTP service (:func:`facenet_tf.service.create_app`).

    Attributes:
        model: the model directory or file (as ``enroll``/``identify`` take).
        gallery: the gallery file; created on the first enrolment when absent.
        host: address to listen on. Anything but loopback needs :attr:`token`.
        port: TCP port.
        token: the bearer token every ``/v1`` request must carry; ``None``: no check
            (loopback only).
        max_upload_mb: largest request body, in MiB (a larger one is answered 413).
        max_pixels: largest photo (width × height) decoded; a larger one is answered 413.
        cors_origin: browser origins allowed to call the API (CORS); empty: CORS off.
        match: threshold and search backend (:class:`MatchConfig`; ``top_k`` is unused).
        max_batch: most photos handed to the model at once.
        batch_wait_ms: how long a batch's first photo waits for others to arrive, in ms.
    """

    model: str = ""
    gallery: str = ""
    host: str = setting("127.0.0.1", "address to listen on; an address other than loopback needs --token")
    port: int = setting(8000, "TCP port to listen on", low=1, high=65535)
    token: Optional[str] = dataclasses.field(default=None, repr=False)  # kept out of logs and tracebacks
    max_upload_mb: float = setting(10.0, "largest request body accepted, in MiB (larger: 413)",
                                   low=0, low_open=True, high=4096)
    max_pixels: int = setting(MAX_PIXELS, "largest photo accepted, in pixels (width x height; larger: 413)",
                              low=1, high=1_000_000_000)
    cors_origin: Tuple[str, ...] = setting((), "browser origins allowed to call the API (CORS); unset: CORS off")
    match: MatchConfig = MatchConfig()
    max_batch: int = setting(16, "most photos handed to the model in one batch", low=1, high=1024)
    batch_wait_ms: float = setting(2.0, "how long the first photo of a batch waits for others, in ms",
                                   low=0, high=1000)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def limits(self) -> ImageLimits:
        return ImageLimits(self.max_pixels)

    def validate(self) -> None:
        """Check every field, before any model is loaded.

        Raises:
            FacenetError: one line naming the field; a non-loopback :attr:`host` without a token.
        """
        fields.validate(self)
        for name in ("model", "gallery"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise FacenetError(f"{name} must be a non-empty path; received {getattr(self, name)!r}")
        if self.token is not None and (not isinstance(self.token, str) or not self.token
                                       or not self.token.isascii() or not self.token.isprintable()
                                       or any(c.isspace() for c in self.token)):
            raise FacenetError("token must be non-empty printable ASCII without spaces")
        if self.token is None and not is_loopback(self.host):
            raise FacenetError(f"--host {self.host} is reachable from other machines: give --token T "
                               "(or set FACENET_TF_TOKEN), or listen on 127.0.0.1")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is only reachable from this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
