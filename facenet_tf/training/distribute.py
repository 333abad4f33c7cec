"""Choosing the ``tf.distribute`` strategy of a run.

``"default"`` is TensorFlow's default strategy (one device); ``"mirrored"`` replicates
over the local GPUs (``MirroredStrategy``); ``"multi_worker"`` over the workers named in
``TF_CONFIG`` (``MultiWorkerMirroredStrategy``); ``"auto"`` is mirrored with more than one
GPU, else default. Model, optimizer and trainer are built in ``strategy.scope()``.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.training.config import STRATEGIES


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The ``tf.distribute.Strategy`` called ``name`` (one of :data:`STRATEGIES`).

    Raises:
        FacenetError: unknown name, or ``multi_worker`` without a usable ``TF_CONFIG``.
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError as err:
        raise FacenetError(f"TF_CONFIG is not valid JSON: {err}") from None
    if not cluster.get("worker") and not cluster.get("chief"):
        raise FacenetError("strategy 'multi_worker' needs TF_CONFIG naming the cluster's workers "
                           "(see the README, 'Training on several machines')")
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes the run's artefacts (always, outside multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().jobs)
