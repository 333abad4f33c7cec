"""The one image reader (facenet_tf.data.reader) and the folder walk: what files become, what is refused and why."""

import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from facenet_tf.data import SkipReport, load_images, scan_directory
from facenet_tf.data.catalog import usable_catalog
from facenet_tf.data.reader import BadImage, ImageLimits, encoded, inspect_image, inspect_images, read_rgb
from facenet_tf.errors import FacenetError

GRADIENT16 = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)  # 0 … 64491


def _png16_rgb(array: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    h, w, _ = array.shape
    raw = b"".join(b"\x00" + array[i].astype(">u2").tobytes() for i in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kind", ["png", "tiff", "pgm", "pgm_maxval_1023", "png_rgb"])
def test_16_bit_images_keep_their_grey_levels(tmp_path, kind):
    path = str(tmp_path / f"deep.{kind.split('_')[0]}")
    expected = GRADIENT16 >> 8
    if kind in ("png", "tiff"):
        Image.fromarray(GRADIENT16).save(path)
        assert Image.open(path).mode == "I;16"
    elif kind == "pgm":
        with open(path, "wb") as f:
            f.write(b"P5\n64 48\n65535\n" + GRADIENT16.astype(">u2").tobytes())
    elif kind == "pgm_maxval_1023":
        with open(path, "wb") as f:
            f.write(b"P5\n64 48\n1023\n" + (GRADIENT16 >> 6).astype(">u2").tobytes())
        expected = ((GRADIENT16 >> 6).astype(np.int64) * 65535 // 1023) >> 8
    else:
        with open(path, "wb") as f:
            f.write(_png16_rgb(np.stack([GRADIENT16] * 3, axis=-1)))
    pixels = read_rgb(path)
    assert pixels.dtype == np.uint8 and pixels.shape == (48, 64, 3)
    assert np.abs(pixels[..., 0].astype(int) - expected).max() <= 1, "16-bit → high byte, not saturated"
    assert pixels[..., 0].min() == 0 and 250 <= pixels[..., 0].max() <= 255 and 120 <= np.median(pixels) <= 135
    np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
    # the same pixels through the batch loader, and as the bytes a shard stores (a PNG TF decodes)
    assert np.abs(load_images([path], (48, 64)).astype(int) - pixels).max() <= 1
    import tensorflow as tf

    np.testing.assert_array_equal(tf.io.decode_image(encoded(path), channels=3).numpy(), pixels)


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    upright = np.zeros((40, 20, 3), np.uint8)
    upright[:20] = 255  # white top half, black bottom half
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)  # as a phone stores it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = str(tmp_path / "phone.jpg")
    stored.save(path, exif=exif, quality=95)
    assert inspect_image(path) is False, "not decoded by TF as stored: EXIF needs the reader"
    for pixels in (read_rgb(path), load_images([path], (40, 20))):
        assert pixels.shape[-3:] == (40, 20, 3)
        assert pixels[..., :18, :, :].mean() > 200 and pixels[..., 22:, :, :].mean() < 50, "upright"


def test_cmyk_palette_rgba_and_animated_gif(tmp_path):
    rng = np.random.default_rng(0)
    colour = np.repeat(np.repeat(rng.integers(0, 255, (6, 5, 3), dtype=np.uint8), 8, 0), 8, 1)
    Image.fromarray(colour).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    pixels = read_rgb(str(tmp_path / "cmyk.jpg"))
    assert pixels.shape == (48, 40, 3) and np.abs(pixels.astype(int) - colour).mean() < 8

    rgba = np.dstack([colour, np.full(colour.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_rgb(str(tmp_path / "rgba.png")), colour)  # alpha dropped, pixels kept

    palette = Image.fromarray(colour).quantize(16)
    palette.info["transparency"] = 0
    palette.save(tmp_path / "palette.png", transparency=0)
    np.testing.assert_array_equal(read_rgb(str(tmp_path / "palette.png")), np.asarray(palette.convert("RGB")))

    frames = [Image.new("RGB", (20, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    first = read_rgb(str(tmp_path / "anim.gif"))
    assert first.shape == (10, 20, 3) and first[..., 0].min() > 200 and first[..., 2].max() < 50, "first frame"


def test_native_files_decode_the_same_in_tensorflow(tmp_path):
    rng = np.random.default_rng(1)
    image = np.repeat(np.repeat(rng.integers(0, 255, (8, 6, 3), dtype=np.uint8), 4, 0), 4, 1)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(image).save(tmp_path / "b.jpg", quality=90)
    Image.fromarray(image[..., 0]).save(tmp_path / "c.jpg", quality=90)
    Image.fromarray(image).save(tmp_path / "d.bmp")
    paths = [str(tmp_path / n) for n in ("a.png", "b.jpg", "c.jpg", "d.bmp")]
    assert inspect_images(paths) == [True, True, True, True]
    via_tf = load_images(paths, (32, 24))
    for path, pixels in zip(paths, via_tf):
        # PNG/BMP: identical; JPEG: TF's and Pillow's libjpeg builds round a few levels apart
        assert np.abs(pixels.astype(int) - read_rgb(path)).max() <= (0 if path.endswith((".png", ".bmp")) else 6)
        with open(path, "rb") as f:
            assert encoded(path) == f.read(), "native files are stored unchanged"


def test_bad_files_are_refused_with_a_reason(tmp_path):
    good = np.full((20, 16), 128, np.uint8)
    Image.fromarray(good).save(tmp_path / "good.jpg")
    data = (tmp_path / "good.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "page.jpg").write_text("<!DOCTYPE html><html><body>Not found</body></html>")
    pgm = b"P5\n16 20\n255\n" + good.tobytes()
    (tmp_path / "cut.pgm").write_bytes(pgm[:-100])
    Image.new("1", (12000, 12000)).save(tmp_path / "huge.png")
    expected = {"truncated.jpg": "truncated", "empty.jpg": "empty", "page.jpg": "not_an_image", "cut.pgm": "truncated",
                "huge.png": "too_large", "missing.jpg": "missing"}
    results = inspect_images([str(tmp_path / n) for n in expected])
    for (name, reason), result in zip(expected.items(), results):
        assert isinstance(result, BadImage) and result.reason == reason and name in str(result), (name, result)
    with pytest.raises(BadImage, match="12000x12000"):
        read_rgb(str(tmp_path / "huge.png"))
    assert read_rgb(str(tmp_path / "huge.png"), ImageLimits(12000 * 12000)).shape == (12000, 12000, 3)
    with pytest.raises(FacenetError, match="page.jpg"):  # the batch loader names the file, one line
        load_images([str(tmp_path / "good.jpg"), str(tmp_path / "page.jpg")], (16, 16))


def test_image_limits_reach_every_reader(tmp_path):
    """One limits object decides for the reader, the checks and the Pillow decode inside tf.data."""
    from facenet_tf.data.config import DataConfig
    from facenet_tf.data.images import decode_resized

    pixels = np.random.default_rng(0).integers(0, 256, (20, 30), np.uint8)
    path = str(tmp_path / "face.pgm")  # not native: decoded by the reader inside tf.data
    Image.fromarray(pixels).save(path)
    exact, below = ImageLimits(600), ImageLimits(599)
    assert inspect_images([path], exact) == [False]
    (refused,) = inspect_images([path], below)
    assert isinstance(refused, BadImage) and refused.reason == "too_large" and "600 pixels > limit 599" in str(refused)
    np.testing.assert_array_equal(decode_resized([path], [False], (20, 30), limits=exact)[0, :, :, 0], pixels)
    with pytest.raises(FacenetError, match="changed while it was read"):
        decode_resized([path], [False], (20, 30), limits=below)
    assert ImageLimits.from_config(DataConfig(max_image_pixels=1234)) == ImageLimits(1234)
    assert ImageLimits() == ImageLimits(50_000_000)
    for value in (0, -5, 2.5, True, "10"):
        with pytest.raises(FacenetError, match="max_pixels"):
            ImageLimits(value)


def _face(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.full((20, 16), value, np.uint8)).save(path)


def test_walk_survives_link_loops_dangling_links_and_unreadable_folders(tmp_path, monkeypatch):
    root = tmp_path / "faces"
    for i in range(3):
        _face(str(root / "ann" / f"{i}.png"), 10 * i)
    _face(str(root / "ann" / "2019" / "7.png"), 99)  # nested folders belong to the identity
    os.symlink(root / "ann", root / "ann" / "loop")  # a link back to its own folder
    os.symlink("self.png", root / "ann" / "self.png")  # a link to itself
    os.symlink("gone.png", root / "ann" / "dangling.png")
    for i in range(2):
        _face(str(root / "bob" / f"{i}.png"), 50 + i)
    _face(str(root / "locked" / "0.png"), 1)
    os.symlink(root, root / "root_link")  # an identity folder that is the root itself

    real_scandir = os.scandir

    def scandir(path="."):  # tests run as root, where chmod 000 does not lock a folder
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    report = SkipReport()
    catalog = scan_directory(str(root), min_images=1, report=report)
    assert catalog.names == ("ann", "bob")
    assert [os.path.relpath(p, root) for p in catalog.paths[:4]] == ["ann/0.png", "ann/1.png", "ann/2.png",
                                                                     "ann/2019/7.png"]
    reasons = {os.path.relpath(e["path"], root): e["reason"] for e in report.skipped}
    assert reasons == {"ann/loop": "symlink_loop", "ann/self.png": "symlink_loop", "ann/dangling.png": "missing",
                       "locked": "unreadable_folder", "root_link": "symlink_loop"}
    assert report.counts() == {"missing": 1, "symlink_loop": 3, "unreadable_folder": 1}
    assert len(report.lines()) == 3
    with pytest.raises(FacenetError) as err:
        scan_directory(str(root), min_images=1, report=SkipReport(strict=True))
    assert len(str(err.value).splitlines()) == 1 and "ann/dangling.png" in str(err.value)  # first, in name order


def test_check_catalog_leaves_out_bad_files_and_small_identities(tmp_path):
    for i in range(4):
        _face(str(tmp_path / "ann" / f"{i}.png"), i)
    for i in range(3):
        _face(str(tmp_path / "bob" / f"{i}.png"), i)
    (tmp_path / "bob" / "2.png").write_bytes(b"")
    report = SkipReport()
    catalog = usable_catalog(scan_directory(str(tmp_path), min_images=1, report=report), report, min_images=3)
    assert catalog.names == ("ann",) and catalog.num_images == 4 and catalog.native.all()
    assert report.counts() == {"empty": 1, "too_few_images": 1}
    assert report.excluded == [{"identity": "bob", "images": 2, "needed": 3}]
    assert report.lines()[-1].startswith("excluded 1 identity with fewer than 3 usable images: bob (2)")


@pytest.mark.parametrize("orientation", [1, 6])
def test_read_within_a_pixel_bound_keeps_the_upright_shape_and_says_the_scale(tmp_path, orientation):
    """read_rgb_within: a large photo comes out at most max_pixels (aspect kept, EXIF applied),
    with the scale back to read_rgb's pixels; a small one exactly as read_rgb gives it."""
    from facenet_tf.data.reader import read_rgb_within

    path = str(tmp_path / "photo.jpg")
    exif = Image.Exif()
    exif[0x0112] = orientation
    stored = np.random.default_rng(0).integers(0, 256, (300, 480, 3), dtype=np.uint8)
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    full = read_rgb(path)
    pixels, (sx, sy) = read_rgb_within(path, 20_000)
    assert pixels.shape[0] * pixels.shape[1] <= 20_000 and pixels.shape[2] == 3
    assert pixels.shape[1] * sx == pytest.approx(full.shape[1]) and pixels.shape[0] * sy == pytest.approx(full.shape[0])
    assert sx == pytest.approx(sy, rel=0.02)  # the aspect is kept
    same, scale = read_rgb_within(path, full.shape[0] * full.shape[1])
    assert scale == (1.0, 1.0) and np.array_equal(same, full)
    with pytest.raises(BadImage):
        read_rgb_within(path, 20_000, ImageLimits(1000))
