"""Train an embedding model with online triplet mining, then write every artefact.

``train(config)`` is what ``python pipelines/train.py`` and ``facenet-tf train`` run:
data → P×K stream → embedding model → :class:`TripletTrainer` (``model.fit`` with the
triplet loss and its mining statistics) → ``model.keras``, ``saved_model/``,
``metadata.json`` and ``metrics.json`` in the output directory, plus TensorBoard logs and
per-epoch checkpoints.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from typing import Any, Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from facenet_tf import losses as losses_lib
from facenet_tf.artifacts import KERAS_FILE, METADATA_FILE, METRICS_FILE, SAVED_MODEL_DIR, atomic_path, fingerprint_weights, write_json
from facenet_tf.callbacks import CollapseWarning, HeldOutVerification
from facenet_tf.data import tfrecord
from facenet_tf.data import AugmentConfig, IdentityCatalog, PKConfig, load_images, pk_dataset, scan_directory, synthetic_identities
from facenet_tf.data.images import parse_image_size
from facenet_tf.data.sampler import in_memory_bytes
from facenet_tf.distances import DISTANCES
from facenet_tf.errors import FacenetError, check_choice
from facenet_tf.model import ModelConfig, build_embedding_model

logger = logging.getLogger("facenet_tf")

PREPROCESSING = "float32 RGB pixels 0..255, resized bilinear (antialiased); per-image standardisation inside the model"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training images come from and how batches are formed.

    Attributes:
        data_dir: folder with one sub-folder per identity; ``None`` = the built-in
            synthetic identities.
        validation_identities: identities held out (the last ones in natural name order)
            and evaluated every epoch; ``None`` = 10% of identities (at least 2 when there
            are 20 or more, else 0).
        identities_per_batch: P.
        images_per_identity: K.
        augment: augmentation of training batches; ``None`` disables it.
        synthetic_identities: number of synthetic people (synthetic data only).
        synthetic_images_per_identity: images per synthetic person.
        cache_mb: datasets whose decoded images fit in this many MB are decoded once and
            batched from memory; larger ones are decoded from files every step.
    """

    data_dir: Optional[str] = None
    validation_identities: Optional[int] = None
    identities_per_batch: int = 16
    images_per_identity: int = 4
    augment: Optional[AugmentConfig] = AugmentConfig()
    synthetic_identities: int = 120
    synthetic_images_per_identity: int = 10
    cache_mb: int = 1024


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything one training run needs; defaults are the small-data recipe.

    Attributes:
        data: :class:`DataConfig`.
        model: :class:`facenet_tf.model.ModelConfig`.
        output_dir: where artefacts go.
        epochs: passes of ``steps_per_epoch`` batches.
        steps_per_epoch: batches per epoch.
        loss: one of :data:`facenet_tf.losses.LOSSES`.
        margin: triplet margin α, in units of ``distance``.
        distance: one of :data:`facenet_tf.distances.DISTANCES`.
        learning_rate: peak learning rate (AdamW), reached after ``warmup_steps`` and
            cosine-decayed to 1% by the end.
        warmup_steps: linear warm-up steps.
        weight_decay: decoupled weight decay of AdamW.
        seed: seeds weights, batches and augmentation: same seed, same run.
        init_from: optional local model to start from (see :func:`build_model`).
        freeze_backbone_epochs: train only the embedding head for this many epochs first,
            then unfreeze everything with ``learning_rate * finetune_learning_rate_factor``.
        finetune_learning_rate_factor: learning-rate factor after unfreezing.
    """

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    output_dir: str = os.path.join("saved_models", "facenet_tf")
    epochs: int = 6
    steps_per_epoch: int = 60
    loss: str = "semihard"
    margin: float = 0.2
    distance: str = "squared_l2"
    learning_rate: float = 2e-3
    warmup_steps: int = 50
    weight_decay: float = 1e-4
    seed: int = 0
    init_from: Optional[str] = None
    freeze_backbone_epochs: int = 0
    finetune_learning_rate_factor: float = 0.1

    def validate(self) -> None:
        """Raise :class:`FacenetError` for values no run could use."""
        check_choice("loss", self.loss, losses_lib.LOSSES)
        check_choice("distance", self.distance, DISTANCES)
        for name in ("epochs", "steps_per_epoch"):
            if getattr(self, name) < 1:
                raise FacenetError(f"{name} must be >= 1; received {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise FacenetError(f"learning_rate must be > 0; received {self.learning_rate}")
        if not 0 <= self.freeze_backbone_epochs < self.epochs:
            raise FacenetError(
                f"freeze_backbone_epochs must be between 0 and epochs - 1 ({self.epochs - 1}); "
                f"received {self.freeze_backbone_epochs}"
            )
        if not self.margin >= 0:
            raise FacenetError(f"margin must be >= 0; received {self.margin}")
        if self.data.images_per_identity < 2:
            raise FacenetError(
                f"images_per_identity must be >= 2 (a batch needs positive pairs); received {self.data.images_per_identity}"
            )


class TripletTrainer(keras.Model):
    """Wraps an embedding model for ``fit``: triplet loss with mining statistics per step.

    ``train_step`` logs ``loss`` (epoch running mean), ``step_loss``, the loss object's
    statistics (``active_fraction``, ``semihard_fraction``, ``mean_positive_distance``,
    ``mean_negative_distance``, ``embedding_norm``) and ``learning_rate``, each step.
    """

    def __init__(self, embedder: keras.Model, triplet_loss: keras.losses.Loss, **kwargs):
        super().__init__(**kwargs)
        self.embedder = embedder
        self.triplet_loss = triplet_loss
        self.loss_tracker = keras.metrics.Mean(name="loss")

    def call(self, inputs, training=False):
        return self.embedder(inputs, training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        images, labels = data
        with tf.GradientTape() as tape:
            embeddings = self.embedder(images, training=True)
            loss, stats = self.triplet_loss.call_with_stats(labels, embeddings)
            total = loss + tf.add_n(self.embedder.losses) if self.embedder.losses else loss
        variables = self.embedder.trainable_variables
        self.optimizer.apply(tape.gradient(total, variables), variables)
        self.loss_tracker.update_state(loss)
        return {
            "loss": self.loss_tracker.result(),
            "step_loss": loss,
            **stats,
            "learning_rate": tf.convert_to_tensor(self.optimizer.learning_rate),
        }


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` produced: the model, paths written and the final metrics."""

    model: keras.Model
    output_dir: str
    metrics: Dict[str, Any]
    metadata: Dict[str, Any]
    history: Dict[str, list]


def load_training_data(data: DataConfig, image_size: Tuple[int, int], seed: int):
    """Catalog and (when it fits in ``cache_mb``) decoded images of the training data.

    Returns:
        ``(catalog, images or None, description)``.
    """
    if data.data_dir is None:
        images, catalog = synthetic_identities(
            data.synthetic_identities, data.synthetic_images_per_identity, image_size, seed
        )
        return catalog, images, f"synthetic ({catalog.summary()}, seed {seed})"
    catalog = scan_directory(data.data_dir)
    if in_memory_bytes(catalog.num_images, image_size) <= data.cache_mb * 2**20:
        logger.info("decoding %d images into memory", catalog.num_images)
        return catalog, load_images(catalog.paths, image_size), f"{data.data_dir} ({catalog.summary()})"
    return catalog, None, f"{data.data_dir} ({catalog.summary()})"


def _split(catalog: IdentityCatalog, images: Optional[np.ndarray], validation_identities: Optional[int], image_size):
    n = validation_identities
    if n is None:
        n = max(2, catalog.num_identities // 10) if catalog.num_identities >= 20 else 0
    train_cat, val_cat = catalog.split(n)
    if images is None:
        val_images = load_images(val_cat.paths, image_size) if val_cat.num_images else None
        return train_cat, None, val_cat, val_images
    cut = int(np.searchsorted(catalog.labels, catalog.num_identities - n))
    return train_cat, images[:cut], val_cat, images[cut:]


def _optimizer(config: TrainConfig, epochs: Optional[int] = None, learning_rate: Optional[float] = None
               ) -> keras.optimizers.Optimizer:
    """AdamW with linear warm-up then cosine decay to 1% over ``epochs`` (default: all)."""
    learning_rate = learning_rate or config.learning_rate
    total = (epochs or config.epochs) * config.steps_per_epoch
    warmup = min(config.warmup_steps, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=learning_rate / 100 if warmup else learning_rate,
        decay_steps=max(total - warmup, 1),
        alpha=0.01,
        warmup_target=learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)


def build_model(config: TrainConfig) -> keras.Model:
    """The embedding model of ``config``, or the ``init_from`` model when given.

    ``init_from`` may be a ``.keras`` model (or a training output directory holding
    ``model.keras``), a SavedModel directory (see :func:`_model_from_saved_model`), or a
    ``.weights.h5`` file of a model built with the same ``ModelConfig`` (or a training
    checkpoint). Nothing is downloaded.
    """
    if config.init_from is None:
        return build_embedding_model(config.model)
    path = config.init_from
    if not os.path.exists(path):
        raise FacenetError(
            f"--init-from {path!r} not found: pass a local .keras model, SavedModel directory or .weights.h5 file "
            f"(facenet_tf never downloads weights)"
        )
    size = parse_image_size(config.model.image_size)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, KERAS_FILE)):
        path = os.path.join(path, KERAS_FILE)
    if os.path.isdir(path) and os.path.isfile(os.path.join(path, "saved_model.pb")):
        model = _model_from_saved_model(path, config, size)
    elif path.endswith(".keras") and os.path.isfile(path):
        model = keras.saving.load_model(path, compile=False)
    elif path.endswith(".h5") and os.path.isfile(path):
        import h5py  # Keras' own dependency for .weights.h5

        model = build_embedding_model(config.model)
        target = model
        try:
            with h5py.File(path, "r") as f:
                is_checkpoint = "embedder" in f  # a training checkpoint: the trainer wrapping the model
        except OSError as err:
            raise FacenetError(f"--init-from {path!r} is not a Keras weights file: {err}") from None
        if is_checkpoint:
            target = TripletTrainer(model, None)
            target(np.zeros((1, *size, 3), np.float32))
        try:
            with warnings.catch_warnings():
                # Keras only warns when parts of a file do not match and keeps those layers'
                # fresh weights: a half-initialised model, so treat it as the mismatch it is.
                warnings.filterwarnings("error", message="Skipping nested container")
                target.load_weights(path)
        except Exception as err:  # noqa: BLE001 - a mismatching file is the user's mistake
            raise FacenetError(f"--init-from {path!r} does not fit a {config.model.backbone} model "
                               f"built with this ModelConfig: {str(err).splitlines()[0]}") from None
    else:
        raise FacenetError(
            f"--init-from {config.init_from!r}: expected a .keras model, a training output directory, "
            f"a SavedModel directory or a .weights.h5 file"
        )
    if (int(model.input_shape[1]), int(model.input_shape[2])) != size:
        raise FacenetError(
            f"--init-from model takes {model.input_shape[1]}x{model.input_shape[2]} images; "
            f"image_size is {size[0]}x{size[1]}"
        )
    return model


def _model_from_saved_model(path: str, config: TrainConfig, size: Tuple[int, int]) -> keras.Model:
    """A trainable model from a SavedModel.

    One written by facenet_tf carries its weights in model order (``model_weights``) and
    its architecture in ``assets/metadata.json``: the same model is rebuilt with them.
    Any other SavedModel with a ``serving_default`` signature becomes a frozen feature
    extractor (``keras.layers.TFSMLayer``) under a new trainable embedding head.
    """
    import tensorflow as tf

    from facenet_tf.artifacts import read_json

    loaded = tf.saved_model.load(path)
    meta_path = os.path.join(path, "assets", METADATA_FILE)
    if hasattr(loaded, "model_weights") and os.path.isfile(meta_path):
        meta = read_json(meta_path)
        model = build_embedding_model(ModelConfig(backbone=meta["backbone"], embedding_dim=meta["embedding_dim"],
                                                  image_size=tuple(meta["image_size"])))
        weights = [v.numpy() for v in loaded.model_weights]
        if [w.shape for w in weights] != [tuple(w.shape) for w in model.weights]:
            raise FacenetError(f"--init-from {path!r}: its weights do not match a {meta['backbone']} model")
        model.set_weights(weights)
        return model
    inputs = keras.Input((*size, 3), dtype="float32", name="images")
    features = keras.layers.TFSMLayer(path, call_endpoint="serving_default", trainable=False, name="pretrained")(inputs)
    if isinstance(features, dict):
        features = next(iter(features.values()))
    x = keras.layers.Dense(config.model.embedding_dim, name="embedding")(features)
    outputs = keras.layers.UnitNormalization(axis=-1, name="l2_normalize", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="facenet_on_savedmodel")


def backbone_layers(model: keras.Model) -> list:
    """The feature-extractor layers of an embedding model: everything before the pooling head."""
    head = {"pool", "dropout", "embedding", "l2_normalize"}
    return [layer for layer in model.layers if layer.name not in head and not isinstance(layer, keras.layers.InputLayer)]


def train(config: TrainConfig, verbose: int = 1) -> TrainResult:
    """Run one training job end to end.

    Args:
        config: the run's :class:`TrainConfig`.
        verbose: Keras ``fit`` verbosity (0 silent, 1 progress bar, 2 one line per epoch).

    Returns:
        :class:`TrainResult`.

    Raises:
        FacenetError: bad configuration or data.
    """
    config.validate()
    image_size = parse_image_size(config.model.image_size)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, image_size=image_size))
    keras.utils.set_random_seed(config.seed)
    started = time.time()

    pk = PKConfig(config.data.identities_per_batch, config.data.images_per_identity, config.seed)
    if config.data.data_dir is not None and tfrecord.is_shard_dir(config.data.data_dir):
        if config.data.validation_identities:
            raise FacenetError("validation_identities needs an image folder; TFRecord shards are used for training only")
        index = tfrecord.read_index(config.data.data_dir)
        data_description = f"{config.data.data_dir} (TFRecord shards: {index['num_images']} images of {len(index['names'])} identities)"
        dataset = tfrecord.pk_dataset_from_shards(config.data.data_dir, image_size, pk, config.data.augment)
        num_train_identities, num_train_images = len(index["names"]), index["num_images"]
        val_cat, val_images = IdentityCatalog((), np.zeros(0, np.int32), ()), None
    else:
        catalog, images, data_description = load_training_data(config.data, image_size, config.seed)
        train_cat, train_images, val_cat, val_images = _split(catalog, images, config.data.validation_identities, image_size)
        dataset = pk_dataset(train_cat, image_size, pk, config.data.augment, images=train_images)
        num_train_identities, num_train_images = train_cat.num_identities, train_cat.num_images

    embedder = build_model(config)
    triplet_loss = losses_lib.get(config.loss, margin=config.margin, distance=config.distance)
    trainer = TripletTrainer(embedder, triplet_loss, name="triplet_trainer")
    frozen = config.freeze_backbone_epochs
    if frozen:
        for layer in backbone_layers(embedder):
            layer.trainable = False
    trainer.compile(optimizer=_optimizer(config, epochs=frozen or None), jit_compile=False)
    trainer(np.zeros((1, *image_size, 3), np.float32))  # build, so checkpoints can be written

    output_dir = config.output_dir
    os.makedirs(output_dir, exist_ok=True)
    callbacks = [CollapseWarning(config.margin)]
    validation = None
    if val_cat.num_images:
        validation = HeldOutVerification(val_images, val_cat.labels, embedder, config.distance, config.seed)
        callbacks.append(validation)
        from facenet_tf.tensorboard_views import ValidationViews  # ROC image, histograms, projector

        callbacks.append(ValidationViews(validation, os.path.join(output_dir, "logs"), val_cat.names, val_images))
    callbacks += [
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"), update_freq=1),
        keras.callbacks.ModelCheckpoint(
            os.path.join(output_dir, "checkpoints", "epoch_{epoch:03d}.weights.h5"), save_weights_only=True
        ),
        keras.callbacks.TerminateOnNaN(),
    ]
    fit = dict(steps_per_epoch=config.steps_per_epoch, callbacks=callbacks, verbose=verbose, shuffle=False)
    if frozen:
        first = trainer.fit(dataset, epochs=frozen, **fit).history
        for layer in backbone_layers(embedder):
            layer.trainable = True
        trainer.compile(optimizer=_optimizer(config, config.epochs - frozen,
                                             config.learning_rate * config.finetune_learning_rate_factor),
                        jit_compile=False)
        history = trainer.fit(dataset, epochs=config.epochs, initial_epoch=frozen, **fit)
        history.history = {k: first.get(k, []) + v for k, v in history.history.items()}
    else:
        history = trainer.fit(dataset, epochs=config.epochs, **fit)
    train_seconds = time.time() - started

    metrics: Dict[str, Any] = {
        "train_seconds": round(train_seconds, 1),
        "final_loss": float(history.history["loss"][-1]),
        "num_train_identities": num_train_identities,
        "num_train_images": num_train_images,
    }
    thresholds = None
    if validation is not None:
        result = validation.result
        metrics["validation"] = {
            **result.to_json_dict(),
            "num_images": int(val_cat.num_images),
            "num_identities": int(val_cat.num_identities),
        }
        thresholds = {"best_accuracy": result.threshold, "at_far": result.threshold_at_far[1e-3], "far": 1e-3}
    metadata = {
        "format": "facenet_tf/1",
        "backbone": config.model.backbone,
        "image_size": list(image_size),
        "embedding_dim": config.model.embedding_dim,
        "distance": config.distance,
        "margin": config.margin,
        "loss": config.loss,
        "preprocessing": PREPROCESSING,
        "thresholds": thresholds,
        "training_data": data_description,
        "validation_identities": list(val_cat.names),
        "fingerprint": fingerprint_weights(embedder.get_weights()),
        "config": dataclasses.asdict(config),
    }
    write_artifacts(embedder, output_dir, metadata, metrics)
    return TrainResult(embedder, output_dir, metrics, metadata, history.history)


def write_artifacts(model: keras.Model, output_dir: str, metadata: Dict[str, Any], metrics: Dict[str, Any]) -> None:
    """Write ``model.keras``, ``saved_model/``, ``metadata.json`` and ``metrics.json``, each atomically."""
    from facenet_tf.export import export_saved_model

    with atomic_path(os.path.join(output_dir, KERAS_FILE)) as tmp:
        model.save(tmp)
    export_saved_model(model, os.path.join(output_dir, SAVED_MODEL_DIR), metadata)
    write_json(os.path.join(output_dir, METADATA_FILE), metadata)
    write_json(os.path.join(output_dir, METRICS_FILE), metrics)
