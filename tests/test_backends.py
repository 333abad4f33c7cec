"""The loss suite on every Keras 3 backend, each in its own process (issue 22).

``tests/backends_worker.py`` runs the suite under ``KERAS_BACKEND=tensorflow``, ``jax`` and
``torch`` (one subprocess each; Keras picks its backend once per process) and saves every
loss value, statistic and gradient; here each backend must pass its suite and the backends
must agree with TensorFlow to 1e-5 on every random and degenerate batch. A backend whose
package is not installed skips with the extra to install.
"""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "backends_worker.py")
BACKENDS = ("tensorflow", "jax", "torch")


def environment(backend):
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
            "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}


def require(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[backends]')")


@pytest.fixture(scope="module")
def suites(tmp_path_factory):
    """``backend -> (report, results)``: the worker's JSON report and saved results. The
    worker starts on every installed backend at once, so the processes (each mostly
    single-threaded tracing and compiling) overlap on the CPU's cores."""
    started, finished = {}, {}
    for backend in BACKENDS:
        if importlib.util.find_spec(backend) is not None:
            folder = tmp_path_factory.mktemp(f"backend_{backend}")
            with open(folder / "stdout", "w") as out, open(folder / "stderr", "w") as err:
                started[backend] = folder, subprocess.Popen(
                    [sys.executable, WORKER, str(folder / "results.npz")], stdout=out, stderr=err,
                    env=environment(backend))

    def result(backend):
        if backend not in finished:
            folder, child = started[backend]
            child.wait(timeout=900)
            stdout, stderr = ((folder / name).read_text() for name in ("stdout", "stderr"))
            assert child.returncode == 0, stderr[-3000:]
            with np.load(folder / "results.npz") as saved:
                finished[backend] = json.loads(stdout.strip().splitlines()[-1]), dict(saved)
        return finished[backend]

    yield result
    for _, child in started.values():  # not waited for: a test failed or was not selected
        child.kill()
        child.wait()


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_suite_passes_on_backend(backend, suites):
    require(backend)
    report, results = suites(backend)
    assert report["backend"] == backend
    assert report["failures"] == [], "\n".join(report["failures"])
    assert report["checks"] > 1000 and len(results) > 1000


def comparable(key):
    """Keys whose mining is decided by exact values. Not: norms of 1e-20, whose squared
    distances (1e-40) are subnormal rounding noise that each backend's matmul flushes or
    keeps differently, and exact ties under l2/cosine, where rounding of the square root /
    normalisation, not the data, orders the tied negatives."""
    kind, metric, batch = key.split("|")[:3]
    return batch != "tiny_norms" and not (batch == "ties" and metric != "squared_l2")


@pytest.mark.parametrize("backend", ("jax", "torch"))
def test_values_and_gradients_equal_tensorflow(backend, suites):
    require(backend)
    require("tensorflow")
    _, want = suites("tensorflow")
    _, got = suites(backend)
    assert set(got) == set(want)
    worst = []
    for key in filter(comparable, want):
        scale = max(1.0, float(np.max(np.abs(want[key]), initial=0.0)))
        err = float(np.max(np.abs(got[key] - want[key]), initial=0.0)) / scale
        if not err <= 1e-5:
            worst.append(f"{key}: {err:.3g}")
    assert not worst, worst[:20]


@pytest.mark.parametrize("backend", ("jax", "torch"))
def test_losses_import_no_tensorflow(backend, suites):
    """``import facenet_tf.losses`` (and distances) under another backend leaves TF out
    (as the worker found it, right after those imports)."""
    require(backend)
    report, _ = suites(backend)
    assert report["tensorflow_imported"] is False
