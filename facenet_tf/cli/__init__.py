"""``facenet-tf`` command line: one sub-command per pipeline script.

Each sub-command is a module ``facenet_tf.cli.<name>`` with ``HELP``,
``add_arguments(parser)`` declaring its flags and ``run(args) -> int`` building a config and
calling the library. ``pipelines/<name>.py`` runs the same sub-command. A
:class:`FacenetError` (any user mistake) prints one line and exits with status 2
(``--verbose`` also prints the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from typing import List, Optional

from facenet_tf.errors import FacenetError

# TensorFlow's C++ start-up chatter (CUDA probing, CPU flags) is noise on a command line.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: sub-command name → module under facenet_tf.cli
COMMANDS = {
    "train": "train",
    "evaluate": "evaluate",
    "prepare": "prepare",
    "align": "align",
    "export": "export",
    "enroll": "enroll",
    "detect": "detect",
    "identify": "identify",
    "verify": "verify",
    "gallery": "gallery",
    "import-dlib": "import_dlib",
    "cluster": "cluster",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facenet-tf", description="FaceNet-style face embeddings (Keras 3 / TensorFlow)")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"facenet_tf.cli.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        if not any("--verbose" in action.option_strings for action in command._actions):
            command.add_argument("--verbose", action="store_true",
                                 help="on an error, also print the Python traceback")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run a sub-command; returns the exit status (0 success, 2 user error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return importlib.import_module(f"facenet_tf.cli.{COMMANDS[args.command]}").run(args)
    except FacenetError as err:
        if args.verbose is True or (not isinstance(args.verbose, bool) and args.verbose >= 2):
            traceback.print_exc()
        print(f"facenet-tf {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facenet-tf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
