"""``facenet-tf`` command line: one sub-command per pipeline script.

Each sub-command is a module ``facenet_tf.cli.<name>`` with ``HELP``,
``add_arguments(parser)`` declaring its flags and ``run(args) -> int`` building a config and
calling the library. ``pipelines/<name>.py`` runs the same sub-command. A
:class:`FacenetError` (any user mistake) prints one line and exits with status 2
(``--verbose`` also prints the traceback). Ctrl-C and SIGTERM stop a command the same way, through
:class:`KeyboardInterrupt`, so every command's cleanup runs (temporary files removed, worker
processes ended, a transaction rolled back): exit status 130 (SIGINT) or 143 (SIGTERM; the
process then ends at once, without the interpreter's teardown).

Quiet and quick: a command's flags are declared only when that command is parsed (so
``facenet-tf --help`` reads no config), configs import no TensorFlow, and TensorFlow's
start-up lines are hidden unless ``--verbose`` (:mod:`facenet_tf.cli.quiet`). Every command
takes ``--json``: the long ones end with a few human lines, plus their JSON with ``--json``
(:func:`facenet_tf.cli.common.print_summary`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import logging
import signal
import sys
import threading
import traceback
from typing import Callable, List, NoReturn, Optional

from facenet_tf.errors import FacenetError

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
    "import": "import_model",
    "import-dlib": "import_dlib",
    "serve": "serve",
    "cluster": "cluster",
}


class CommandParser(argparse.ArgumentParser):
    """A sub-command's parser that declares its flags on first use (parse or help)."""

    declare: Optional[Callable[[argparse.ArgumentParser], None]] = None

    def declared(self) -> "CommandParser":
        """This parser with its flags declared."""
        declare, self.declare = self.declare, None
        if declare is not None:
            declare(self)
        return self

    def parse_known_args(self, args=None, namespace=None):
        return super(CommandParser, self.declared()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        return super(CommandParser, self.declared()).format_help()


def _declare(module) -> Callable[[argparse.ArgumentParser], None]:
    def declare(command: argparse.ArgumentParser) -> None:
        module.add_arguments(command)
        flags = {flag for action in command._actions for flag in action.option_strings}
        if "--verbose" not in flags:
            command.add_argument("--verbose", action="store_true",
                                 help="show TensorFlow's start-up lines and, on an error, the Python traceback")
        if "--json" not in flags:
            command.add_argument("--json", action="store_true",
                                 help="also print the result as one JSON object (the last line)")
    return declare


def build_parser(lazy: bool = False) -> argparse.ArgumentParser:
    """The ``facenet-tf`` parser; ``lazy``: each command's flags are declared when it is parsed."""
    parser = argparse.ArgumentParser(prog="facenet-tf", description="FaceNet-style face embeddings (Keras 3 / TensorFlow)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"facenet_tf.cli.{module_name}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        command.declare = _declare(module)
        if not lazy:
            command.declared()
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


def _exit_now(status: int) -> NoReturn:
    """End the process with ``status`` once a SIGTERM has stopped the command and its cleanup has
    run: SIGTERM asks for the process to end, and skipping the interpreter's teardown keeps
    TensorFlow's (whose runtime may still hold work the signal interrupted, and can crash there:
    exit -11 instead of 143) from turning a clean stop into a crash."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _verbose(args: argparse.Namespace) -> bool:
    return args.verbose is True or (not isinstance(args.verbose, bool) and args.verbose >= 2)


def method_notice(args: argparse.Namespace) -> Optional[str]:
    """The notice of the alignment method the flags choose (a licence restriction,
    :attr:`facenet_tf.faces.methods.AlignMethod.notice`), which the command prints first; or ``None``."""
    from facenet_tf.cli.common import ALIGN_ROOT

    method = getattr(args, ALIGN_ROOT + "method", None)
    if method is None and args.command == "align":
        method = args.method
    if method is None:
        return None
    from facenet_tf.faces.methods import ALIGN_METHODS

    return ALIGN_METHODS.get(method).notice if method in ALIGN_METHODS else None


def main(argv: Optional[List[str]] = None) -> int:
    """Run a sub-command; returns the exit status (0 success, 2 user error, 130 Ctrl-C). A SIGTERM
    ends the process with status 143 once the command's cleanup has run (it does not return)."""
    from facenet_tf.cli import quiet

    argv = sys.argv[1:] if argv is None else list(argv)
    if not quiet.wants_verbose(argv):
        quiet.hide_tensorflow_start_up()
    args = build_parser(lazy=True).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    notice = method_notice(args)
    if notice:  # on stderr, so that --json output stays one JSON document
        print(notice, file=sys.stderr, flush=True)
    try:
        with _sigterm_stops():
            return importlib.import_module(f"facenet_tf.cli.{COMMANDS[args.command]}").run(args)
    except FacenetError as err:
        if _verbose(args):
            traceback.print_exc()
        print(f"facenet-tf {args.command}: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"facenet-tf {args.command}: terminated (SIGTERM)", file=sys.stderr)
        _exit_now(128 + signal.SIGTERM)
    except KeyboardInterrupt:
        print(f"facenet-tf {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
