"""``facenet-tf gallery``: list who is enrolled, or remove a person."""

from __future__ import annotations

import argparse

HELP = "list the people in a gallery, or remove one"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("list", "remove"))
    p.add_argument("--gallery", required=True, help="gallery file written by facenet-tf enroll")
    p.add_argument("--name", default=None, help="the person to remove (remove only)")


def run(args: argparse.Namespace) -> int:
    from facenet_tf.errors import FacenetError
    from facenet_tf.gallery.service import open_gallery_as_stored

    if args.action == "remove" and args.name is None:
        raise FacenetError("gallery remove needs --name")
    if args.action == "list" and args.name is not None:
        raise FacenetError("gallery list takes no --name")
    with open_gallery_as_stored(args.gallery, read_only=args.action == "list") as gallery:
        if args.action == "remove":
            removed = gallery.remove(args.name)
            if not removed:
                raise FacenetError(f"gallery {args.gallery} has no entries named {args.name!r}")
            print(f"removed {removed} entries of {args.name!r} from {args.gallery}")
            return 0
        people = gallery.list()
        print(f"{args.gallery}: {sum(n for _, n in people)} entries of {len(people)} people; model "
              f"{gallery.model_fingerprint}, dim {gallery.embedding_dim}, {gallery.distance} distance")
        for name, count in people:
            print(f"{name}\t{count}")
    return 0
