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
_RUNS = {}


def environment(backend):
    return {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
            "JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": "",
            "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}


def require(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e '.[backends]')")


def run_suite(backend, tmp_path_factory):
    """The worker's JSON report and saved results on ``backend``, run once per session."""
    if backend not in _RUNS:
        out = tmp_path_factory.mktemp(f"backend_{backend}") / "results.npz"
        done = subprocess.run([sys.executable, WORKER, str(out)], capture_output=True,
                              text=True, env=environment(backend), timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        with np.load(out) as saved:
            _RUNS[backend] = report, dict(saved)
    return _RUNS[backend]


@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_suite_passes_on_backend(backend, tmp_path_factory):
    require(backend)
    report, results = run_suite(backend, tmp_path_factory)
    assert report["backend"] == backend
    assert report["failures"] == [], "\n".join(report["failures"])
    assert report["checks"] > 1000 and len(results) > 1000


@pytest.mark.parametrize("backend", ("jax", "torch"))
def test_values_and_gradients_equal_tensorflow(backend, tmp_path_factory):
    require(backend)
    require("tensorflow")
    _, want = run_suite("tensorflow", tmp_path_factory)
    _, got = run_suite(backend, tmp_path_factory)
    assert set(got) == set(want)
    worst = []
    for key in want:
        scale = max(1.0, float(np.max(np.abs(want[key]), initial=0.0)))
        err = float(np.max(np.abs(got[key] - want[key]), initial=0.0)) / scale
        if not err <= 1e-5:
            worst.append(f"{key}: {err:.3g}")
    assert not worst, worst[:20]


@pytest.mark.parametrize("backend", ("jax", "torch"))
def test_losses_import_no_tensorflow(backend):
    """``import facenet_tf.losses`` (and distances) under another backend leaves TF out."""
    require(backend)
    code = ("import sys, facenet_tf.losses, facenet_tf.distances; "
            "print('tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment(backend), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "False"
