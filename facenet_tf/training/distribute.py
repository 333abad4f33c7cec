"""Choosing the ``tf.distribute`` strategy of a run.

``"default"`` is TensorFlow's default strategy (one device); ``"mirrored"`` replicates
over the local GPUs (``MirroredStrategy``); ``"multi_worker"`` over the workers named in
``TF_CONFIG`` (``MultiWorkerMirroredStrategy``); ``"auto"`` is mirrored with more than one
GPU, else default. Model, optimizer and trainer are built in ``strategy.scope()``.
TensorFlow is imported inside the functions: loading the table (``--strategy``'s choices in
``facenet-tf train --help``) costs no TensorFlow import.
"""

from __future__ import annotations

import json
import os

from facenet_tf.errors import FacenetError
from facenet_tf.training.config import STRATEGIES


def split_cpu(devices: int) -> None:
    """Split the host CPU into ``devices`` logical devices (before TensorFlow starts them).

    Raises:
        FacenetError: TensorFlow's devices are already initialised in this process.
    """
    import tensorflow as tf

    if devices < 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == devices:
        return
    try:
        tf.config.set_logical_device_configuration(cpus[0], [tf.config.LogicalDeviceConfiguration()] * devices)
    except RuntimeError:
        raise FacenetError(f"cpu_devices={devices}: TensorFlow's devices are already initialised in this process; "
                           "set it before anything else runs (a fresh process)") from None


def make_strategy(name: str, cpu_devices: int = 0) -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` registered as ``name`` in :data:`STRATEGIES`.

    Args:
        name: strategy name.
        cpu_devices: see :func:`split_cpu`; ``mirrored`` then replicates over them.

    Raises:
        FacenetError: unknown name, or ``multi_worker`` without a usable ``TF_CONFIG``.
    """
    factory = STRATEGIES.get(name)
    split_cpu(cpu_devices)
    return factory()


@STRATEGIES.register("default", help="one device")
def _default() -> tf.distribute.Strategy:
    import tensorflow as tf

    return tf.distribute.get_strategy()


@STRATEGIES.register("mirrored", help="replicas on the local GPUs (or the --cpu-devices logical CPUs)")
def _mirrored() -> tf.distribute.Strategy:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


@STRATEGIES.register("multi_worker", help="the workers named in TF_CONFIG")
def _multi_worker() -> tf.distribute.Strategy:
    import tensorflow as tf

    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError as err:
        raise FacenetError(f"TF_CONFIG is not valid JSON: {err}") from None
    if not cluster.get("worker") and not cluster.get("chief"):
        raise FacenetError("strategy 'multi_worker' needs TF_CONFIG naming the cluster's workers "
                           "(see docs/distributed.md)")
    return tf.distribute.MultiWorkerMirroredStrategy()


@STRATEGIES.register("auto", help="mirrored with more than one GPU, else default")
def _auto() -> tf.distribute.Strategy:
    import tensorflow as tf

    return _mirrored() if len(tf.config.list_logical_devices("GPU")) > 1 else _default()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes the run's artefacts (always, outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs)
