"""``facenet-tf serve``: the HTTP API and web page over a gallery (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import os
import signal

from facenet_tf.cli.common import DEFAULT_OUTPUT, add_align_argument, recognizer_from_args

HELP = ("serve recognition over HTTP: enrol, identify, verify and a web page over one gallery "
        "(needs the [serve] extra)")

#: The environment variable holding the token when --token is not given.
TOKEN_ENV = "FACENET_TF_TOKEN"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.cli.config_flags import add_config_flags
    from facenet_tf.service.config import ServeConfig

    add_align_argument(p)
    p.add_argument("--model", default=DEFAULT_OUTPUT, help="the model to recognise with (default: %(default)s)")
    p.add_argument("--gallery", required=True, help="gallery file; created on the first enrolment if absent")
    p.add_argument("--token", default=None,
                   help=f"every /v1 request must carry 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV}; "
                        "unset: no token, loopback only)")
    add_config_flags(p, ServeConfig, skip=("model", "gallery", "token", "match.top_k"))


def config_from_args(args: argparse.Namespace, environ=os.environ):
    """The checked :class:`ServeConfig` of the flags (token: ``--token``, else ``$FACENET_TF_TOKEN``).

    Raises:
        FacenetError: a bad flag; a non-loopback ``--host`` without a token.
    """
    from facenet_tf.cli.config_flags import apply_flags
    from facenet_tf.overlap import check_disjoint
    from facenet_tf.service.config import ServeConfig

    token = args.token if args.token is not None else (environ.get(TOKEN_ENV) or None)
    config = apply_flags(ServeConfig(model=args.model, gallery=args.gallery, token=token), args)
    config.validate()
    check_disjoint(config.gallery, [config.model], "--gallery")
    return config


def run(args: argparse.Namespace) -> int:
    from facenet_tf.service.app import create_app, require_serve_extra

    config = config_from_args(args)  # before the model loads: a refused --host costs nothing
    require_serve_extra()
    import uvicorn

    app = create_app(config, recognizer_from_args(args))  # the model, loaded once
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, finishes in-flight requests (up to the
    # timeout), runs the app's shutdown (the worker finishes its queue), then raises the signal
    # again under the handler it found. A stop asked for by SIGTERM is a success: exit 0.
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        uvicorn.run(app, host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=10,
                    server_header=False)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _stopped(signum, frame):
    raise SystemExit(0)
