"""``facenet-tf`` command line: one sub-command per pipeline script.

Each sub-command is a module ``facenet_tf.cli.<name>`` with ``HELP``,
``add_arguments(parser)`` declaring its flags and ``run(args) -> int`` building a config and
calling the library. ``pipelines/<name>.py`` runs the same sub-command. A
:class:`FacenetError` (any user mistake) prints one line and exits with status 2
(``--verbose`` also prints the traceback). Ctrl-C and SIGTERM stop a command the same way, through
:class:`KeyboardInterrupt`, so every command's cleanup runs (temporary files removed, worker
processes ended, a transaction rolled back): exit status 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import threading
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
    "identify": "identify",
    "verify": "verify",
    "gallery": "gallery",
    "import-dlib": "import_dlib",
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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's :class:`KeyboardInterrupt`."""


@contextlib.contextmanager
def _sigterm_stops() -> "contextlib.AbstractContextManager[None]":
    """While the block runs, SIGTERM raises :class:`Terminated`; a second one during the
    cleanup it starts is ignored (kill -9 still ends the process). Outside the main thread
    (no handler can be set there) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[List[str]] = None) -> int:
    """Run a sub-command; returns the exit status (0 success, 2 user error, 130 Ctrl-C, 143 SIGTERM)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with _sigterm_stops():
            return importlib.import_module(f"facenet_tf.cli.{COMMANDS[args.command]}").run(args)
    except FacenetError as err:
        if args.verbose is True or (not isinstance(args.verbose, bool) and args.verbose >= 2):
            traceback.print_exc()
        print(f"facenet-tf {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"facenet-tf {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"facenet-tf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
