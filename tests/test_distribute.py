"""Issue 14: tf.distribute with global-batch mining, multi-worker, mixed precision, XLA.

Logical CPU devices must be configured before TensorFlow starts, so the multi-replica
checks run in fresh processes.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from facenet_tf.ownership import OWNER_FILE

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))

MIRRORED_EQUALS_SINGLE_DEVICE = r"""
import json, numpy as np, tensorflow as tf, keras
from facenet_tf import losses
from facenet_tf.models import ModelConfig, build_embedding_model
from facenet_tf.training import TripletTrainer
from facenet_tf.training.distribute import make_strategy

strategy = make_strategy("mirrored", cpu_devices=2)
assert strategy.num_replicas_in_sync == 2
keras.utils.set_random_seed(3)
config = ModelConfig(image_size=(32, 32), embedding_dim=8)
single = build_embedding_model(config)
with strategy.scope():
    replicated = build_embedding_model(config)
replicated.set_weights(single.get_weights())
rng = np.random.default_rng(0)
x = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
y = np.repeat(np.arange(8), 2).astype("int32")  # P=8 identities x K=2: 4 whole identities per replica
loss = losses.get("semihard", margin=0.5)

def gradients(trainer, images, labels, replicas):
    with tf.GradientTape() as tape:
        value, _ = trainer.replica_loss(images, labels, training=False)
        scaled = value / replicas
    return value, tape.gradient(scaled, trainer.embedder.trainable_variables)

out = {}
reference = TripletTrainer(single, loss)
value, grads = gradients(reference, x, y, 1)
out["single"] = [float(value), [g.numpy().tolist() for g in grads]]
for local in (False, True):
    with strategy.scope():
        trainer = TripletTrainer(replicated, loss, local_mining=local)
    xs = strategy.experimental_distribute_values_from_function(lambda c: x[c.replica_id_in_sync_group * 8:][:8])
    ys = strategy.experimental_distribute_values_from_function(lambda c: y[c.replica_id_in_sync_group * 8:][:8])

    @tf.function
    def step(a, b):
        values, grads = strategy.run(lambda i, l: gradients(trainer, i, l, 2), args=(a, b))
        return (strategy.reduce("MEAN", values, axis=None), [strategy.reduce("SUM", g, axis=None) for g in grads])

    value, grads = step(xs, ys)
    out["local" if local else "global"] = [float(value), [g.numpy().tolist() for g in grads]]
print(json.dumps(out))
"""


def test_mirrored_global_mining_equals_one_device_and_local_mining_differs():
    proc = subprocess.run([sys.executable, "-c", MIRRORED_EQUALS_SINGLE_DEVICE], capture_output=True, text=True,
                          env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    (single, single_grads), (glob, glob_grads), (local, local_grads) = out["single"], out["global"], out["local"]
    assert glob == pytest.approx(single, abs=1e-5)
    for a, b in zip(glob_grads, single_grads):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)
    differs = abs(local - single) > 1e-4 or any(
        np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-4 for a, b in zip(local_grads, single_grads))
    assert differs, "this batch was built so that per-replica mining gives another result"


TINY = ["--synthetic-identities", "16", "--synthetic-images-per-identity", "4", "--identities-per-batch", "4",
        "--images-per-identity", "2", "--image-size", "32", "--embedding-dim", "8", "--validation-identities", "0",
        "--verbose", "0", "--json"]


def _train_at_once(*runs, timeout=300):
    """``subprocess.run(pipelines/train.py TINY ARGS --output-dir OUT, capture_output=True, text=True)``
    of each ``(ARGS, OUT)`` in ``runs``, all started at once: the processes (mostly single-threaded
    importing and tracing) overlap on the CPU's cores. Their ``CompletedProcess``, in order."""
    logs, children = tempfile.mkdtemp(prefix="train_logs_"), []
    try:
        for i, (args, output_dir) in enumerate(runs):
            with open(os.path.join(logs, f"{i}.out"), "w") as out, open(os.path.join(logs, f"{i}.err"), "w") as err:
                children.append(subprocess.Popen(
                    [sys.executable, os.path.join(REPO, "pipelines", "train.py"), *TINY, *args, "--output-dir",
                     output_dir], stdout=out, stderr=err, env=ENV))
        done = []
        for i, child in enumerate(children):
            child.wait(timeout=timeout)
            with open(os.path.join(logs, f"{i}.out")) as out, open(os.path.join(logs, f"{i}.err")) as err:
                done.append(subprocess.CompletedProcess(child.args, child.returncode, out.read(), err.read()))
        return done
    finally:
        for child in children:
            child.kill()
            child.wait()
        shutil.rmtree(logs)


def test_fit_under_mirrored_on_two_cpu_devices(tmp_path):
    mirrored = ["--strategy", "mirrored", "--cpu-devices", "2"]
    proc, bad = _train_at_once(([*mirrored, "--epochs", "1", "--steps-per-epoch", "3"], str(tmp_path / "out")),
                               ([*mirrored, "--identities-per-batch", "3"], str(tmp_path / "x")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MirroredStrategy: 2 replica(s), mining over the global batch" in proc.stderr
    assert np.isfinite(json.loads(proc.stdout.strip().splitlines()[-1])["final_loss"])
    assert bad.returncode == 2 and "multiple of the 2 replicas" in bad.stderr


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_with_tf_config_train_three_steps_and_only_the_chief_writes(tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = str(tmp_path / "out")
    procs = []
    for index in range(2):
        env = dict(ENV, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO, "pipelines", "train.py"), *TINY, "--strategy", "multi_worker",
             "--epochs", "1", "--steps-per-epoch", "3", "--output-dir", out],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = [p.communicate(timeout=400) for p in procs]
    for proc, (stdout, stderr) in zip(procs, results):
        assert proc.returncode == 0, stderr[-3000:]
    losses = [json.loads(stdout.strip().splitlines()[-1])["final_loss"] for stdout, _ in results]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert sorted(os.listdir(out)) == sorted([OWNER_FILE, "checkpoints", "logs", "metadata.json", "metrics.json",
                                              "model.keras", "run_state.json", "saved_model"])


PRECISION = {"bfloat16": ["--mixed-precision", "bfloat16"], "float16": ["--mixed-precision", "float16"],
             "xla": ["--jit-compile"]}

# A serving client in a fresh process: each SavedModel's input and output dtypes and the largest
# |norm - 1| of its embeddings, one JSON line per path.
SERVE = ("import json, sys, numpy as np, tensorflow as tf\n"
         "for path in sys.argv[1:]:\n"
         "    sig = tf.saved_model.load(path).signatures['serving_default']\n"
         "    e = sig(tf.zeros([2, 32, 32, 3]))['embeddings']\n"
         "    print(json.dumps([list(sig.structured_input_signature[1].values())[0].dtype.name, e.dtype.name,\n"
         "                      float(np.abs(np.linalg.norm(e.numpy(), axis=1) - 1).max())]))\n")


@pytest.fixture(scope="module")
def precision_runs(tmp_path_factory):
    """``{name: (CompletedProcess, output folder, served)}`` of a training run with each of
    ``PRECISION``'s flags, trained at once, their SavedModels then served by one fresh process
    (``served``: input dtype, output dtype, largest |norm - 1|; None if the run failed)."""
    root = tmp_path_factory.mktemp("precision")
    outs = {name: str(root / name) for name in PRECISION}
    procs = _train_at_once(*[([*args, "--epochs", "3", "--steps-per-epoch", "32", "--learning-rate", "3e-3",
                               "--no-augment"], outs[name]) for name, args in PRECISION.items()])
    runs = dict(zip(PRECISION, procs))
    good = [name for name in PRECISION if runs[name].returncode == 0]
    served = subprocess.run([sys.executable, "-c", SERVE, *(os.path.join(outs[name], "saved_model") for name in good)],
                            capture_output=True, text=True, env=ENV, check=True)
    answers = dict(zip(good, map(json.loads, served.stdout.strip().splitlines()[-len(good):] if good else [])))
    return {name: (runs[name], outs[name], answers.get(name)) for name in PRECISION}


@pytest.mark.parametrize("name", PRECISION)
def test_mixed_precision_and_xla_train_with_a_finite_falling_loss(precision_runs, name):
    proc, out, served = precision_runs[name]
    assert proc.returncode == 0, proc.stderr[-3000:]
    losses = json.load(open(os.path.join(out, "metrics.json")))["epoch_losses"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    input_dtype, dtype, norm_error = served
    assert input_dtype == "float32" and dtype == "float32" and norm_error < 1e-3
