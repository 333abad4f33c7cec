"""``facenet-tf train``: flags → :class:`TrainConfig` → :func:`facenet_tf.training.train`."""

from __future__ import annotations

import argparse
import json
import os

from facenet_tf.cli.common import DEFAULT_OUTPUT

HELP = "train an embedding model with online triplet mining"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from facenet_tf.training import DataConfig, TrainConfig

    d, t = DataConfig(), TrainConfig()
    p.add_argument("--data-dir", default=None, help="folder with one sub-folder of images per identity (default: built-in synthetic identities)")
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT, help="where model.keras, saved_model/, logs/ and metrics go (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=t.epochs, help="default: %(default)s")
    p.add_argument("--steps-per-epoch", type=int, default=t.steps_per_epoch, help="default: %(default)s")
    p.add_argument("--identities-per-batch", type=int, default=d.identities_per_batch, help="P (default: %(default)s)")
    p.add_argument("--images-per-identity", type=int, default=d.images_per_identity, help="K (default: %(default)s)")
    p.add_argument("--image-size", default="64", help="N or HxW in pixels (default: %(default)s)")
    p.add_argument("--embedding-dim", type=int, default=t.model.embedding_dim, help="default: %(default)s")
    p.add_argument("--backbone", default=t.model.backbone, help="small_cnn, mobilenet_v2 or inception_resnet_v2 (default: %(default)s)")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout before the embedding layer (default: %(default)s)")
    p.add_argument("--backbone-weights", default=None, help="local Keras weights file for a keras.applications backbone, or 'imagenet' for the file in ~/.keras/models")
    p.add_argument("--loss", default=t.loss, help="semihard, hard, soft_hard or batch_all (default: %(default)s)")
    p.add_argument("--distance", default=t.distance, help="squared_l2, l2 or cosine (default: %(default)s)")
    p.add_argument("--margin", type=float, default=t.margin, help="default: %(default)s")
    p.add_argument("--learning-rate", type=float, default=t.learning_rate, help="peak learning rate (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=t.weight_decay, help="default: %(default)s")
    p.add_argument("--warmup-steps", type=int, default=t.warmup_steps, help="default: %(default)s")
    p.add_argument("--seed", type=int, default=t.seed, help="default: %(default)s")
    p.add_argument("--validation-identities", type=int, default=None, help="hold out the last N identities, evaluated each epoch (default: 10%% of identities)")
    p.add_argument("--no-augment", action="store_true", help="disable augmentation")
    p.add_argument("--init-from", default=None, help="start from a local model: .keras file, training output dir, SavedModel dir or .weights.h5")
    p.add_argument("--freeze-backbone-epochs", type=int, default=0, help="train only the embedding head for N epochs, then unfreeze at a 10x lower learning rate")
    p.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress bar, 2 one line per epoch")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.data import AugmentConfig
    from facenet_tf.data.images import parse_image_size
    from facenet_tf.model import ModelConfig
    from facenet_tf.training import DataConfig, TrainConfig, train

    config = TrainConfig(
        data=DataConfig(
            data_dir=args.data_dir,
            validation_identities=args.validation_identities,
            identities_per_batch=args.identities_per_batch,
            images_per_identity=args.images_per_identity,
            augment=None if args.no_augment else AugmentConfig(),
        ),
        model=ModelConfig(backbone=args.backbone, embedding_dim=args.embedding_dim,
                          image_size=parse_image_size(args.image_size), weights=args.backbone_weights,
                          dropout=args.dropout),
        output_dir=args.output_dir, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, loss=args.loss,
        margin=args.margin, distance=args.distance, learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps, weight_decay=args.weight_decay, seed=args.seed, init_from=args.init_from,
        freeze_backbone_epochs=args.freeze_backbone_epochs,
    )
    result = train(config, verbose=args.verbose)
    print(f"wrote {os.path.join(result.output_dir, 'model.keras')}, saved_model/, metadata.json, metrics.json")
    print(f"TensorBoard: tensorboard --logdir {os.path.join(result.output_dir, 'logs')}")
    print(json.dumps(result.metrics, sort_keys=True, default=float))
    return 0
