"""No face, no answer: which images keep a face under the evidence rule (issue 30 item 2).

Every ORL image (92x112 tight crops: dlib's HOG detector misses some because the face fills
the frame) must keep a face; generated faceless images (flat black/white/grey, uniform and
blurred noise, gradients, stripes, checkerboards, sinusoids, cartoon shapes) must keep none.
Measured for the imported dlib model's recorded alignment (HOG → MTCNN fallback → 5-point
predictor, ``on_failure="resize"``) and for MTCNN with the ArcFace template and ``resize``,
through :func:`facenet_tf.faces.found.every_face` (what ``identify``/``verify``/``enroll`` use),
against the old rule (any image without a detected face becomes a whole-image face).

    python benchmarks/no_face.py                       # all 40 ORL people, 12 faceless images per kind
    python benchmarks/no_face.py --people 2 --per-kind 1   # smoke size
    python benchmarks/no_face.py --dlib-detector dlib_hog_cnn --no-mtcnn   # another dlib detector

Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._orl import orl_dir  # noqa: E402

KINDS = ("black", "white", "grey", "noise", "blurred_noise", "gradient", "radial", "stripes", "checkerboard",
         "sinusoid", "shapes")


def faceless(kind: str, rng: np.random.Generator, size=(112, 92)) -> np.ndarray:
    """One generated uint8 ``[H, W, 3]`` image without a face."""
    from PIL import Image, ImageDraw, ImageFilter

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    colour = rng.integers(0, 256, 3)
    if kind in ("black", "white", "grey"):
        value = {"black": 0, "white": 255, "grey": int(rng.integers(60, 200))}[kind]
        return np.full((h, w, 3), value, np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "blurred_noise":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        return np.asarray(img.filter(ImageFilter.GaussianBlur(float(rng.uniform(1, 4)))))
    if kind in ("gradient", "radial"):
        t = (xx / w * np.cos(rng.uniform(0, 6.3)) + yy / h * np.sin(rng.uniform(0, 6.3))) if kind == "gradient" \
            else np.hypot(xx - w * rng.uniform(0.2, 0.8), yy - h * rng.uniform(0.2, 0.8)) / max(h, w)
        t = (t - t.min()) / max(np.ptp(t), 1e-9)
        return (t[..., None] * colour + (1 - t[..., None]) * rng.integers(0, 256, 3)).astype(np.uint8)
    if kind in ("stripes", "checkerboard", "sinusoid"):
        period = rng.uniform(4, 30)
        if kind == "stripes":
            t = (np.floor((xx * np.cos(rng.uniform(0, 3.2)) + yy * np.sin(rng.uniform(0, 3.2))) / period) % 2)
        elif kind == "checkerboard":
            t = (np.floor(xx / period) + np.floor(yy / period)) % 2
        else:
            t = 0.5 + 0.5 * np.sin(xx / period * 2 * np.pi) * np.cos(yy / period * 2 * np.pi)
        return (t[..., None] * colour + (1 - t[..., None]) * rng.integers(0, 256, 3)).astype(np.uint8)
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(3, 9))):
        x0, y0 = rng.uniform(-10, w), rng.uniform(-10, h)
        x1, y1 = x0 + rng.uniform(10, w), y0 + rng.uniform(10, h)
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        [draw.ellipse, draw.rectangle][int(rng.integers(0, 2))]((x0, y0, x1, y1), fill=fill)
    return np.asarray(img)


def kept(aligner, image, evidence: bool) -> bool:
    """Whether the image keeps a face: under the evidence rule (``every_face``), or the old rule."""
    from facenet_tf.faces.found import every_face

    faces = aligner.detect(image)
    if evidence:
        return bool(every_face(aligner, image, faces))
    return bool(faces) or aligner.config.on_failure == "resize"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--people", type=int, default=40, help="ORL people (10 images each)")
    p.add_argument("--per-kind", type=int, default=12, help="faceless images per kind and size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dlib-detector", default="dlib_hog", help="detector of the dlib pipeline (dlib_hog, dlib_hog_cnn)")
    p.add_argument("--no-mtcnn", dest="mtcnn", action="store_false", help="measure the dlib pipeline only")
    args = p.parse_args()

    from facenet_tf.data.reader import read_rgb
    from facenet_tf.faces.aligner import AlignConfig, FaceAligner

    root = orl_dir()
    people = sorted((d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))),
                    key=lambda d: int(d[1:]))[:args.people]
    orl = [read_rgb(os.path.join(root, d, f)) for d in people for f in sorted(os.listdir(os.path.join(root, d)))]
    rng = np.random.default_rng(args.seed)
    blank = {kind: [faceless(kind, rng, size) for size in ((112, 92), (250, 250)) for _ in range(args.per_kind)]
             for kind in KINDS}
    pipelines = {f"dlib ({args.dlib_detector}, dlib_landmarks)": AlignConfig(
        size=150, method="dlib_landmarks", detector=args.dlib_detector, on_failure="resize")}
    if args.mtcnn:
        pipelines["mtcnn (arcface)"] = AlignConfig(on_failure="resize")
    figures = {"orl_images": len(orl), "faceless_per_kind": 2 * args.per_kind}
    print(f"{'pipeline':28s} {'ORL kept':>10s} {'faceless kept':>14s}  per kind (of {2 * args.per_kind})   s")
    for name, config in pipelines.items():
        aligner = FaceAligner(config)
        start = time.perf_counter()
        orl_kept = sum(kept(aligner, image, True) for image in orl)
        per_kind = {kind: sum(kept(aligner, image, True) for image in images) for kind, images in blank.items()}
        old = sum(kept(aligner, image, False) for images in blank.values() for image in images)
        seconds = time.perf_counter() - start
        figures[name] = {"orl_kept": orl_kept, "faceless_kept": sum(per_kind.values()), "per_kind": per_kind,
                         "faceless_kept_old_rule": old, "seconds": round(seconds, 1)}
        shown = " ".join(f"{k}:{v}" for k, v in per_kind.items() if v) or "none"
        print(f"{name:28s} {orl_kept:>5d}/{len(orl):<4d} {sum(per_kind.values()):>8d} (old {old})  {shown}  "
              f"{seconds:.0f}")
    print(json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
