"""The one exception type of facenet_tf.

Every mistake a user can make (a missing folder, a bad flag value, an unreadable image, a
gallery built by another model) raises :class:`FacenetError` with a one-line message that
names the argument or file, what was expected and what was received. ``facenet_tf.cli``
catches it, prints the message and exits with status 2.
"""


class FacenetError(Exception):
    """A user-facing error: one line, no traceback needed to understand it."""


def check_choice(name, value, allowed):
    """Return ``value`` if it is in ``allowed``, else raise a :class:`FacenetError`.

    Args:
        name: argument name used in the message, e.g. ``"distance"``.
        value: the value received.
        allowed: iterable of allowed values.
    """
    allowed = tuple(allowed)
    if value not in allowed:
        raise FacenetError(
            f"{name} must be one of {', '.join(map(repr, allowed))}; received {value!r}"
        )
    return value


def file_problem(path: str) -> str:
    """Why ``path`` cannot be read as a file, for a message: ``"not found"``, ``"is a folder,
    not a file"``, ``"is a dangling link"`` or ``"is not a regular file"``; ``""`` for a file."""
    import os

    if os.path.isfile(path):
        return ""
    if os.path.isdir(path):
        return "is a folder, not a file"
    if os.path.islink(path):
        return "is a dangling link"
    if os.path.exists(path):
        return "is not a regular file"
    return "not found"
