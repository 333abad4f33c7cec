"""What the service's worker thread does (:class:`~facenet_tf.service.batcher.MicroBatcher`):
the loaded recognizer and the gallery, as one batch function per kind of request.

The recognition itself is :class:`~facenet_tf.recognition.FaceRecognizer`'s and the gallery
rules are :mod:`facenet_tf.gallery.service`'s (the checks and the one transaction of
``enroll``); this module only routes photos between them. Everything here runs in the worker
thread: the gallery's SQLite connection lives there, and writes are serialised by it.
"""

from __future__ import annotations

import os
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.gallery import service as gallery_service
from facenet_tf.service.errors import RequestError


class Recognition:
    """A recognizer and the gallery at ``config.gallery``.

    The gallery is opened in :meth:`open` when it exists (so a gallery of another model stops
    the start-up, not the first request), else on the first enrolment, which creates it as
    ``facenet-tf enroll`` does. A gallery another process creates meanwhile is picked up.
    """

    def __init__(self, recognizer, config):
        self.recognizer = recognizer
        self.config = config
        self.path = config.gallery
        self._gallery = None

    def open(self) -> None:
        """Open the gallery if it exists, else check it can be created (nothing is written).

        Raises:
            FacenetError: a file that is not a gallery, another model's gallery, a folder that
                does not exist or cannot be written; no threshold given or recorded.
        """
        gallery_service.check_gallery_path(self.path)
        self._reopen()
        self._threshold()

    def close(self) -> None:
        if self._gallery is not None:
            self._gallery.close()
            self._gallery = None

    def functions(self):
        """The :data:`~facenet_tf.service.batcher.BatchFunctions` of the service."""
        return {"identify": self.identify, "verify": self.verify, "enroll": self.enroll,
                "people": self.people, "remove": self.remove}

    def _reopen(self):
        if self._gallery is None and os.path.isfile(self.path):
            self._gallery = gallery_service.open_gallery(self.path, self.recognizer, index=self.config.match.index)
        return self._gallery

    def _threshold(self) -> float:
        given = self.config.match.threshold
        return float(given) if given is not None else float(self.recognizer.threshold(self._gallery))

    def identify(self, images: Sequence[np.ndarray]) -> List[Any]:
        """Every face of each photo: a list of ``FaceMatch`` per photo (distance ``None`` and
        no name while nobody is enrolled). The faces of all photos go to the model in one call;
        should one photo fail, each is answered on its own, so only that one gets the error."""
        gallery = self._reopen()
        if gallery is None:
            return _each(images, lambda image: [_unmatched(face) for face in self.recognizer.detect(image)])
        threshold = self._threshold()
        if len(images) > 1:
            try:
                return self.recognizer.identify_many(images, gallery, threshold)
            except FacenetError:
                pass
        return _each(images, lambda image: self.recognizer.identify(image, gallery, threshold))

    def verify(self, pairs: Sequence[Tuple[np.ndarray, np.ndarray]]) -> List[Any]:
        """``Verification`` of each pair (the chosen face of each photo)."""
        threshold = self.config.match.threshold
        return _each(pairs, lambda pair: self.recognizer.verify(pair[0], pair[1], threshold))

    def enroll(self, requests: Sequence[Tuple[str, Sequence[np.ndarray]]]) -> List[Any]:
        """Enrol each ``(name, photos)``, all photos or none (one transaction); returns the
        number of photos enrolled. A photo without a face fails its request with 422."""
        return _each(requests, lambda request: self._enroll_one(*request))

    def _enroll_one(self, name: str, images: Sequence[np.ndarray]) -> int:
        names = [name] * len(images)
        gallery_service.check_enrolment(self.path, names)
        embeddings = [self._enrolment_face(image, f"image {i + 1} of {len(images)}") for i, image in enumerate(images)]
        gallery_service.store_enrolment(self.recognizer, self.path, names, np.stack(embeddings))
        self._reopen()
        return len(images)

    def _enrolment_face(self, image: np.ndarray, which: str) -> np.ndarray:
        """The embedding of a photo's one face, as ``enroll`` takes it: a photo with no face, or
        with several unless the server was given ``--face``, is refused (422)."""
        faces = self.recognizer.faces(image)
        if not faces:
            raise RequestError(f"no face found in {which}: nobody was enrolled", 422)
        if len(faces) == 1:
            return faces[0].embedding
        if not self.recognizer.face_given:
            raise RequestError(f"{which} shows {len(faces)} faces: enrol photos of one face (or start the server "
                               "with --face to choose one); nobody was enrolled", 422)
        return self.recognizer.embed_face(image)

    def people(self, requests: Sequence[None]) -> List[Any]:
        """``[(name, entries), ...]`` sorted by name, for each request."""
        gallery = self._reopen()
        listing = gallery.list() if gallery is not None else []
        return [listing] * len(requests)

    def remove(self, names: Sequence[str]) -> List[Any]:
        """Remove every entry of each name; the count removed (404 when there is none)."""
        return _each(names, self._remove_one)

    def _remove_one(self, name: str) -> int:
        gallery = self._reopen()
        removed = gallery.remove(name) if gallery is not None else 0
        if not removed:
            raise RequestError(f"nobody called {name!r} is enrolled", 404)
        return removed


def _each(items, fn) -> List[Any]:
    """``fn`` of each item, or the :class:`FacenetError` it raised (that item's answer alone)."""
    out: List[Any] = []
    for item in items:
        try:
            out.append(fn(item))
        except FacenetError as err:
            out.append(err)
    return out


def _unmatched(face):
    from facenet_tf.recognition import FaceMatch

    return FaceMatch(face, None, None, None)
