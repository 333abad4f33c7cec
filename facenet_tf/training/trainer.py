"""The triplet trainer: an embedding model wrapped for ``model.fit`` with online mining.

:class:`TripletTrainer` computes the triplet loss of each P×K batch on the device (mining
happens inside the loss) and reports the loss's mining statistics as Keras metrics.
:func:`build_optimizer` is the run's AdamW with warm-up and cosine decay. Distribution and
XLA are options of ``compile`` / the strategy scope the trainer is built in
(:mod:`facenet_tf.training.distribute`), never hard-coded here.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

#: Mining statistics the losses return (see :mod:`facenet_tf.losses`), logged as metrics.
STATISTICS = ("active_fraction", "semihard_fraction", "mean_positive_distance", "mean_negative_distance",
              "embedding_norm")


class TripletTrainer(keras.Model):
    """Wraps an embedding model for ``fit``: triplet loss with mining statistics per step.

    ``train_step`` logs ``loss`` (epoch running mean), ``step_loss`` (this step's loss),
    the mining statistics of :data:`STATISTICS` (Keras ``Mean`` metrics: running means
    over the epoch) and ``learning_rate``. Under a ``tf.distribute`` strategy each replica
    mines its own slice of the batch and its loss is divided by the number of replicas, so
    the summed gradients are those of the mean loss.

    Args:
        embedder: the embedding model being trained.
        triplet_loss: a loss object of :mod:`facenet_tf.losses` (``None`` only to restore
            checkpoints).
    """

    def __init__(self, embedder: keras.Model, triplet_loss: Optional[keras.losses.Loss], **kwargs):
        super().__init__(**kwargs)
        self.embedder = embedder
        self.triplet_loss = triplet_loss
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.statistics = {name: keras.metrics.Mean(name=name) for name in STATISTICS}

    def call(self, inputs, training=False):
        return self.embedder(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.statistics.values()]

    def train_step(self, data):
        images, labels = data
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            embeddings = self.embedder(images, training=True)
            loss, stats = self.triplet_loss.call_with_stats(labels, embeddings)
            total = loss + tf.add_n(self.embedder.losses) if self.embedder.losses else loss
            scaled = total / replicas if replicas > 1 else total
        variables = self.embedder.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        self.loss_tracker.update_state(loss)
        for name, metric in self.statistics.items():
            metric.update_state(stats[name])
        return {
            "loss": self.loss_tracker.result(),
            "step_loss": loss,
            **{name: metric.result() for name, metric in self.statistics.items()},
            "learning_rate": tf.convert_to_tensor(self.optimizer.learning_rate),
        }


def build_optimizer(learning_rate: float, total_steps: int, warmup_steps: int,
                    weight_decay: float) -> keras.optimizers.Optimizer:
    """AdamW with linear warm-up to ``learning_rate`` then cosine decay to 1% at ``total_steps``.

    Warm-up is capped at half the steps and starts at ``learning_rate / 100``.
    """
    warmup = min(warmup_steps, total_steps // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 100 if warmup else learning_rate,
        decay_steps=max(total_steps - warmup, 1),
        alpha=0.01,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=weight_decay)


def backbone_layers(model: keras.Model) -> list:
    """The feature-extractor layers of an embedding model: everything before the pooling head."""
    head = {"pool", "dropout", "embedding", "l2_normalize"}
    return [layer for layer in model.layers if layer.name not in head and not isinstance(layer, keras.layers.InputLayer)]
