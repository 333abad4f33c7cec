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
    over the epoch) and ``learning_rate``.

    Under a ``tf.distribute`` strategy with R replicas each replica embeds its slice of the
    global batch. With global mining (the default) it all-gathers every replica's
    embeddings and labels and mines its own anchors against that global batch
    (``ref_embeddings`` / ``anchor_offset`` of :mod:`facenet_tf.losses`), so positives and
    negatives come from the whole batch, as on one device; each replica's loss is divided
    by R and the gradients (which flow back through the all-gather) are summed. When every
    replica holds whole identities (P divisible by R: the stream keeps each identity's K
    images together), each replica has the same number of positive pairs and loss and
    gradients equal single-device training on the concatenated batch. ``local_mining``
    mines each replica's slice alone (what ``MirroredStrategy`` gives by default).
    ``step_loss`` is the mean over replicas, the same on every worker. (``batch_all``
    divides by its count of active triplets, which differs between replicas, so there the
    mean of the replicas' losses approximates the single-device loss.)

    Args:
        embedder: the embedding model being trained.
        triplet_loss: a loss object of :mod:`facenet_tf.losses` (``None`` only to restore
            checkpoints).
        local_mining: mine inside each replica's slice only.
    """

    def __init__(self, embedder: keras.Model, triplet_loss: Optional[keras.losses.Loss],
                 local_mining: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.embedder = embedder
        self.triplet_loss = triplet_loss
        self.local_mining = local_mining
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.statistics = {name: keras.metrics.Mean(name=name) for name in STATISTICS}

    def call(self, inputs, training=False):
        return self.embedder(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker, *self.statistics.values()]

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 builds here from a sample batch that it first reduces with
        # strategy.reduce("MEAN"), which fails under MultiWorkerMirroredStrategy
        # (keras-team/keras#20585). This trainer needs no symbolic build: the run calls it on
        # a batch before fit, it has no compiled loss or metrics, and its optimizer is built here.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    def replica_loss(self, images, labels, training=True):
        """``(loss, stats)`` of this replica's slice: its anchors mined against the global
        batch (all replicas' embeddings) unless :attr:`local_mining`; call in a replica context."""
        embeddings = self.embedder(images, training=training)
        context = tf.distribute.get_replica_context()
        if self.local_mining or context is None or context.num_replicas_in_sync == 1:
            return self.triplet_loss.compute(labels, embeddings, return_stats=True)
        labels = tf.reshape(labels, [-1])
        all_embeddings = context.all_gather(embeddings, axis=0)
        all_labels = context.all_gather(labels, axis=0)
        offset = context.replica_id_in_sync_group * tf.shape(labels)[0]
        return self.triplet_loss.compute(labels, embeddings, ref_labels=all_labels, ref_embeddings=all_embeddings,
                                         anchor_offset=offset, return_stats=True)

    def train_step(self, data):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context is not None else 1
        with tf.GradientTape() as tape:
            loss, stats = self.replica_loss(images, labels)
            total = loss + tf.add_n(self.embedder.losses) if self.embedder.losses else loss
            scaled = self.optimizer.scale_loss(total / replicas if replicas > 1 else total)
        variables = self.embedder.trainable_variables
        self.optimizer.apply(tape.gradient(scaled, variables), variables)
        if replicas > 1:
            loss = context.all_reduce(tf.distribute.ReduceOp.MEAN, loss)
        self.loss_tracker.update_state(loss)
        for name, metric in self.statistics.items():
            metric.update_state(stats[name])
        logs = {
            "loss": self.loss_tracker.result(),
            "step_loss": loss,
            **{name: metric.result() for name, metric in self.statistics.items()},
            "learning_rate": tf.convert_to_tensor(self.optimizer.learning_rate),
        }
        extended = tf.distribute.get_strategy().extended
        if getattr(extended, "_in_multi_worker_mode", lambda: False)():
            # Across workers Keras reduces every output with strategy.reduce("MEAN", v, axis=0),
            # which needs an axis (keras-team/keras#20585): give the scalars one.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs


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
    """The feature-extractor layers of an embedding model: those producing spatial feature
    maps ``[N, H, W, C]``; the head (global pooling onwards: embedding, normalisation, dlib's
    ``fc``) is what stays trainable with ``freeze_backbone_epochs``."""
    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and len(layer.output.shape) == 4]
