"""A deterministic synthetic identity dataset, so training runs with nothing downloaded.

Each identity is a cartoon face with its own geometry and texture: head shape, skin and
hair tone, eye spacing/height/size, brow shape, nose length, mouth width/height, plus a
smooth identity-specific blotch pattern. Each image of that identity is re-rendered under
a random pose (shift, scale, in-plane rotation), expression (mouth curve, eye opening),
lighting (gain, gradient direction, gamma) and sensor noise, so identity is learnable but
a pixel-space nearest neighbour is not enough.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from facenet_tf.data.catalog import IdentityCatalog


def _soft(signed_distance: np.ndarray, sharpness: float = 40.0) -> np.ndarray:
    """1 inside (negative signed distance), 0 outside, with an anti-aliased edge."""
    return 1.0 / (1.0 + np.exp(np.clip(signed_distance * sharpness, -30, 30)))


def _ellipse(u, v, cx, cy, rx, ry):
    return np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2) - 1.0


def synthetic_identities(
    num_identities: int = 100,
    images_per_identity: int = 10,
    image_size: Tuple[int, int] = (64, 64),
    seed: int = 0,
) -> Tuple[np.ndarray, IdentityCatalog]:
    """Render the dataset.

    Args:
        num_identities: number of people.
        images_per_identity: images per person.
        image_size: ``(H, W)`` of the rendered images.
        seed: the same seed gives byte-identical images.

    Returns:
        ``(images, catalog)``: uint8 ``[N, H, W, 3]`` with N = num_identities ×
        images_per_identity, grouped by identity, and a catalog whose paths are
        ``synthetic/<name>/<i>`` placeholders and names ``id0000``….
    """
    rng = np.random.default_rng(seed)
    h, w = image_size
    n, m = num_identities, images_per_identity
    ident = _identity_traits(rng, n)
    ids = np.repeat(np.arange(n), m)
    total = n * m
    r = lambda lo, hi: rng.uniform(lo, hi, total)  # noqa: E731
    angle = np.deg2rad(r(-12, 12))
    scale = r(0.88, 1.12)
    tx, ty = r(-0.12, 0.12), r(-0.1, 0.1)
    ys, xs = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w) * (w / h), indexing="ij")
    out = np.empty((total, h, w, 3), np.uint8)
    for start in range(0, total, 256):
        sl = slice(start, min(start + 256, total))
        g = {k: v[ids[sl]] for k, v in ident.items()}
        cos, sin = np.cos(angle[sl])[:, None, None], np.sin(angle[sl])[:, None, None]
        x0 = xs[None] - tx[sl][:, None, None]
        y0 = ys[None] - ty[sl][:, None, None]
        s = scale[sl][:, None, None]
        u = (cos * x0 + sin * y0) / s  # face coordinates of every pixel, posed
        v = (-sin * x0 + cos * y0) / s
        img = _draw_faces(rng, g, u, v)
        out[sl] = _light_and_noise(rng, img, xs, ys)
    names = tuple(f"id{k:04d}" for k in range(n))
    catalog = IdentityCatalog(
        paths=tuple(f"synthetic/{names[k]}/{j}" for k in range(n) for j in range(m)),
        labels=ids.astype(np.int32),
        names=names,
        root="synthetic",
    )
    return out, catalog


def _identity_traits(rng: np.random.Generator, n: int) -> dict:
    """Each of ``n`` people's fixed traits (head shape, skin and hair colour, where and how big
    eyes, brows, nose and mouth are, skin texture blobs): arrays with ``n`` rows."""
    u01 = lambda lo, hi, size=(n,): rng.uniform(lo, hi, size)  # noqa: E731
    return {
        "head_rx": u01(0.50, 0.72), "head_ry": u01(0.68, 0.88),
        "skin": rng.uniform(0.45, 0.8, (n, 1)) * rng.uniform(0.9, 1.1, (n, 3)),
        "hair": rng.uniform(0.05, 0.4, (n, 1)) * rng.uniform(0.85, 1.15, (n, 3)),
        "hair_line": u01(-0.75, -0.35),
        "eye_dx": u01(0.18, 0.36), "eye_y": u01(-0.28, -0.05), "eye_r": u01(0.06, 0.13),
        "brow_dy": u01(0.08, 0.2), "brow_tilt": u01(-0.25, 0.25), "brow_w": u01(0.012, 0.04),
        "nose_len": u01(0.12, 0.35), "nose_w": u01(0.03, 0.09),
        "mouth_y": u01(0.3, 0.55), "mouth_w": u01(0.15, 0.35), "mouth_h": u01(0.025, 0.07),
        "blob_xy": rng.uniform(-0.6, 0.6, (n, 4, 2)), "blob_amp": rng.uniform(-0.25, 0.25, (n, 4)),
        "blob_r": rng.uniform(0.1, 0.3, (n, 4)),
    }


def _draw_faces(rng: np.random.Generator, g: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The faces of traits ``g`` (one row per image) at face coordinates ``u, v`` ``[B, H, W]``,
    with a random eye opening and smile per image: float ``[B, H, W, 3]`` in about 0..1."""
    e = lambda key: g[key][:, None, None]  # noqa: E731
    count = len(u)
    head = _soft(_ellipse(u, v, 0.0, 0.05, e("head_rx"), e("head_ry")))
    hair = head * _soft((v - e("hair_line")) * 1.0)
    face = head - hair
    eye_open = rng.uniform(0.45, 1.0, count)[:, None, None]
    eyes = sum(
        _soft(_ellipse(u, v, side * e("eye_dx"), e("eye_y"), e("eye_r"), e("eye_r") * 0.6 * eye_open))
        for side in (-1, 1)
    )
    brows = sum(
        _soft(np.abs(v - (e("eye_y") - e("brow_dy") + side * e("brow_tilt") * (u - side * e("eye_dx"))))
              - e("brow_w"))
        * _soft(np.abs(u - side * e("eye_dx")) - e("eye_r") * 1.4)
        for side in (-1, 1)
    )
    nose = _soft(np.abs(u) - e("nose_w")) * _soft(np.abs(v - (e("eye_y") + 0.1 + e("nose_len") / 2)) - e("nose_len") / 2)
    smile = rng.uniform(-0.15, 0.35, count)[:, None, None]
    mouth_v = v - e("mouth_y") + smile * (1 - (u / e("mouth_w")) ** 2) * e("mouth_h") * 3
    mouth = _soft(np.abs(mouth_v) - e("mouth_h")) * _soft(np.abs(u) - e("mouth_w"))
    texture = sum(
        g["blob_amp"][:, b, None, None]
        * np.exp(-((u - g["blob_xy"][:, b, 0, None, None]) ** 2 + (v - g["blob_xy"][:, b, 1, None, None]) ** 2)
                 / g["blob_r"][:, b, None, None] ** 2)
        for b in range(4)
    )
    feature_dark = np.clip(eyes * 0.85 + brows * 0.7 + mouth * 0.6 + nose * 0.25, 0, 1)
    skin = g["skin"][:, None, None, :] * (1 + texture[..., None])
    return (
        face[..., None] * skin * (1 - feature_dark[..., None])
        + hair[..., None] * g["hair"][:, None, None, :]
        + (1 - head[..., None]) * 0.15
    )


def _light_and_noise(rng: np.random.Generator, img: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Random lighting per image (gain, a directional gradient over image coordinates
    ``xs, ys``, gamma), then sensor noise: ``img`` float ``[B, H, W, 3]`` → uint8."""
    count = len(img)
    light_dir = rng.uniform(0, 2 * np.pi, count)
    gradient = 1 + rng.uniform(0, 0.45, count)[:, None, None] * (
        np.cos(light_dir)[:, None, None] * xs[None] + np.sin(light_dir)[:, None, None] * ys[None]
    ) / 2
    img = img * (rng.uniform(0.7, 1.3, count)[:, None, None, None] * gradient[..., None])
    img = np.clip(img, 0, 1) ** rng.uniform(0.75, 1.35, count)[:, None, None, None]
    img = img + rng.normal(0, 0.035, img.shape)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)


def write_synthetic_dataset(output_dir: str, num_identities: int = 20, images_per_identity: int = 5,
                            image_size: Tuple[int, int] = (64, 64), seed: int = 0) -> IdentityCatalog:
    """Write the synthetic dataset as ``output_dir/<name>/<i>.png`` and return its catalog."""
    import os

    from PIL import Image

    from facenet_tf.data.catalog import scan_directory

    images, catalog = synthetic_identities(num_identities, images_per_identity, image_size, seed)
    for image, path in zip(images, catalog.paths):
        _, name, index = path.split("/")
        os.makedirs(os.path.join(output_dir, name), exist_ok=True)
        Image.fromarray(image).save(os.path.join(output_dir, name, f"{index}.png"))
    return scan_directory(output_dir, min_images=1)
