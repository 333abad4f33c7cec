"""What the ORL benchmarks share: where the data is, and how a user mistake ends the script."""

import os
import sys


def orl_dir() -> str:
    """``$FACENET_TF_DATA/orl_faces``, default ``../shared/data/orl_faces`` from the repository."""
    root = os.environ.get("FACENET_TF_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    return os.path.join(root, "orl_faces")


def run(main, prog: str) -> None:
    """Call ``main()``; a :class:`FacenetError` (a user mistake) is one line on stderr and exit status 2."""
    from facenet_tf.errors import FacenetError

    try:
        main()
    except FacenetError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
