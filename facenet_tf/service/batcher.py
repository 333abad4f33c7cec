"""One worker thread that owns the model and the gallery, fed by the web requests.

Every request that needs the model or the gallery becomes a job on a queue. The worker takes
the first waiting job, gathers whatever else arrives within ``wait_s`` (up to ``max_batch``
jobs), and runs the jobs of one kind together through that kind's batch function. One thread
means the model is loaded once and used by one caller at a time, the SQLite connection stays
in the thread that opened it, and gallery writes are serialised without a lock.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from typing import Any, Callable, Dict, List, Sequence

log = logging.getLogger("facenet_tf.service")

#: kind → function of a list of payloads returning one result (or exception) per payload.
BatchFunctions = Dict[str, Callable[[Sequence[Any]], List[Any]]]

_STOP = object()


class MicroBatcher:
    """Runs jobs in one worker thread, a batch per kind at a time.

    Args:
        functions: :data:`BatchFunctions`; a result that is an ``Exception`` is raised to
            that job's caller alone, so one bad photo does not fail its batch.
        max_batch: most jobs per batch (1: no batching).
        wait_s: how long the first job of a batch waits for others, in seconds.
        setup: called first in the worker thread (opens what must live there).
        teardown: called last in the worker thread.
    """

    def __init__(self, functions: BatchFunctions, max_batch: int = 16, wait_s: float = 0.002,
                 setup: Callable[[], None] = None, teardown: Callable[[], None] = None):
        self._functions = dict(functions)
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._setup, self._teardown = setup, teardown
        self._queue: "queue.Queue" = queue.Queue()
        self._thread = None
        self.batches = 0  # how many batches ran: what the tests and benchmarks read
        self.jobs = 0

    def start(self) -> None:
        """Start the worker; raises what ``setup`` raises."""
        started: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(started,), name="facenet-tf-model", daemon=True)
        self._thread.start()
        started.result()

    def stop(self) -> None:
        """Finish the queued jobs, then stop the worker."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join()
            self._thread = None

    async def submit(self, kind: str, payload: Any) -> Any:
        """Run one job and return its result (raising its exception)."""
        if kind not in self._functions:
            raise KeyError(kind)
        if self._thread is None:  # an app used without its lifespan: fail, never wait forever
            raise RuntimeError("the model's worker thread is not running (start the app's lifespan)")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((kind, payload, future))
        return await asyncio.wrap_future(future)

    def _run(self, started: concurrent.futures.Future) -> None:
        try:
            if self._setup is not None:
                self._setup()
        except BaseException as err:  # noqa: BLE001 - handed to start()'s caller
            started.set_exception(err)
            return
        started.set_result(None)
        try:
            while True:
                jobs = self._gather()
                if jobs is None:
                    return
                self._run_batches(jobs)
        finally:
            if self._teardown is not None:
                self._teardown()

    def _gather(self):
        first = self._queue.get()
        if first is _STOP:
            return None
        jobs = [first]
        deadline = time.monotonic() + self._wait_s
        while len(jobs) < self._max_batch:
            try:
                job = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is _STOP:
                self._queue.put(_STOP)  # after this batch
                break
            jobs.append(job)
        return jobs

    def _run_batches(self, jobs) -> None:
        for kind in dict.fromkeys(kind for kind, _, _ in jobs):
            batch = [(payload, future) for k, payload, future in jobs if k == kind]
            self.batches += 1
            self.jobs += len(batch)
            try:
                results = self._functions[kind]([payload for payload, _ in batch])
            except Exception as err:  # noqa: BLE001 - every caller of the batch gets it
                results = [err] * len(batch)
            for (_, future), result in zip(batch, results):
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
