"""How a face is matched against a gallery or another face: :class:`MatchConfig`.

The matching flags of ``facenet-tf identify`` (``--threshold``, ``--top-k``, ``--index``) and
``verify`` (``--threshold``) are generated from it (:mod:`facenet_tf.cli.config_flags`), and
:func:`facenet_tf.gallery.service.identify` / ``verify`` check the same rules, so a
threshold of ``1e400`` or ``"0.5"`` is one line naming it before any image is read.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from facenet_tf import fields
from facenet_tf.fields import setting
from facenet_tf.gallery.index import AUTO, SEARCH_BACKENDS, auto_help


class IndexChoices:
    """The ``index`` choices: :data:`AUTO` and every name in
    :data:`~facenet_tf.gallery.index.SEARCH_BACKENDS`, read when asked (a backend registered
    later counts), with the registry's help."""

    def names(self) -> Tuple[str, ...]:
        return (AUTO, *SEARCH_BACKENDS.names())

    def help(self) -> str:
        return f"{auto_help()}; {SEARCH_BACKENDS.help()}"


@dataclasses.dataclass(frozen=True)
class MatchConfig:
    """The matching options. Each field's help, type and range is its :func:`~facenet_tf.fields.setting`.

    Attributes:
        threshold: largest distance (in the model's distance) accepted as the same person;
            ``None`` = the model's calibrated threshold at its target FAR. Every distance is
            >= 0; the upper bound refuses an infinite or mistyped threshold (``1e9``).
        top_k: how many nearest enrolled entries ``identify`` lists per image (1 = the
            nearest only, the answer itself).
        index: gallery search backend (:class:`IndexChoices`).
    """

    threshold: Optional[float] = setting(
        None, "largest distance accepted as the same person; unset: the model's calibrated threshold at its "
              "target FAR", low=0, high=1e6)
    top_k: int = setting(1, "list the K nearest enrolled entries of each image", low=1, high=1000)
    index: str = setting(AUTO, "gallery search backend", choices=IndexChoices())

    def validate(self) -> None:
        """Check every field's type and range before any image is read.

        Raises:
            FacenetError: one line naming the field.
        """
        fields.validate(self)
