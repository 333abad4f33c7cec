"""Group photos made of ORL faces, shared by the tests that need several faces per photo."""

import os

import numpy as np

GAP = 48


def compose(orl_dir, faces, gap=GAP, background=128):
    """``(canvas uint8 [H, W, 3], [(left, top, right, bottom)] of each pasted face)``."""
    from facenet_tf.data.reader import read_rgb

    crops = [read_rgb(os.path.join(orl_dir, person, f"{i}.pgm")) for person, i in faces]
    height, width = crops[0].shape[:2]
    canvas = np.full((height + 2 * gap, gap + len(crops) * (width + gap), 3), background, np.uint8)
    boxes = []
    for k, crop in enumerate(crops):
        left = gap + k * (width + gap)
        canvas[gap:gap + height, left:left + width] = crop
        boxes.append((left, gap, left + width, gap + height))
    return canvas, boxes
