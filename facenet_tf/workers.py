"""Worker process pools that end with their command.

A command stopped by Ctrl-C or SIGTERM (the CLI turns SIGTERM into :class:`KeyboardInterrupt`)
must not leave its worker processes — nor, through them, multiprocessing's resource tracker —
running for minutes: ``ProcessPoolExecutor.shutdown`` waits for the tasks already running and
never stops a worker. :func:`stop_pool` ends them within seconds; workers started with
:func:`ignore_interrupts` leave Ctrl-C (sent to the whole process group) to their parent, so the
parent decides, and no worker prints a traceback of its own.
"""

from __future__ import annotations

import signal

#: Seconds a stopped worker gets to exit before it is killed.
STOP_TIMEOUT = 3.0


def ignore_interrupts() -> None:
    """A pool initializer: the worker ignores SIGINT (its parent stops it with :func:`stop_pool`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_pool(pool) -> None:
    """Cancel what ``pool`` (a ``concurrent.futures.ProcessPoolExecutor``) has not started and
    end its worker processes now: SIGTERM, then SIGKILL after :data:`STOP_TIMEOUT` seconds."""
    # The pool's process table is private, but Python < 3.14 has no public way
    # (ProcessPoolExecutor.terminate_workers) to stop a worker that is running a task.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    writer = getattr(getattr(pool, "_result_queue", None), "_writer", None)  # shutdown drops the queue
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(STOP_TIMEOUT)
        if process.is_alive():
            process.kill()
            process.join(STOP_TIMEOUT)
    # A worker ended while sending a result leaves half a message in the result pipe, and the
    # pool's manager thread waits for the rest forever (this process holds the pipe's write end
    # too), which blocks the interpreter's exit. With the workers gone, closing that end turns
    # the wait into an end of file: the pool counts itself broken and its thread ends.
    if writer is not None:
        writer.close()
