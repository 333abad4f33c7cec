"""Benchmark: images/s of the P×K input stream, from a folder and from prepared shards, against a
plain tf.data decode + resize of the same files in the same run; and the time and memory of the
shard sampler's index for a synthetic manifest of 1M images of 100k identities.

The reference is what a user would write without identity sampling::

    tf.data.Dataset.from_tensor_slices(paths).repeat()
        .map(read_file → decode_image → resize, AUTOTUNE).batch(P*K).prefetch(AUTOTUNE)

The folder stream is :func:`facenet_tf.data.sampler.pk_dataset` streaming from files (the path
taken when a dataset does not fit ``cache_mb``), the shard stream
:func:`facenet_tf.data.tfrecord.pk_dataset_from_shards` (every record read by its byte offset,
with ``os.pread``, and with the TensorFlow-ops reader the tf.data service path uses); none is
augmented, so all do the same decode + resize per image. The three are timed in
turns, ``--rounds`` times: each stream between two reference runs, compared with their mean (the
machine's load from other processes drifts), and the ratio reported is the median over rounds;
CPU time per image (this process, all threads) is shown too, being less sensitive to that load. The data is ORL upscaled to LFW's
250×250 JPEGs (or ``--data-dir``, a folder of identities).

Run from the repository root::

    PYTHONPATH=. python benchmarks/input_speed.py

The last stdout line is JSON.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._orl import orl_dir, run  # noqa: E402


def jpeg_folder(orl_dir: str, out: str, side: int) -> str:
    """ORL's 40 × 10 faces as ``side``×``side`` RGB JPEGs (LFW's format), written once."""
    from PIL import Image

    for person in sorted(os.listdir(orl_dir)):
        folder = os.path.join(orl_dir, person)
        if not os.path.isdir(folder):
            continue
        os.makedirs(os.path.join(out, person), exist_ok=True)
        for name in os.listdir(folder):
            with Image.open(os.path.join(folder, name)) as img:
                img.convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(
                    os.path.join(out, person, os.path.splitext(name)[0] + ".jpg"), quality=90)
    return out


def rate(dataset, batch: int, steps: int, warmup: int = 3):
    """``(images per second, CPU µs of this process per image)`` over ``steps`` batches after ``warmup``."""
    iterator = iter(dataset)
    for _ in range(warmup):
        next(iterator)
    start, cpu = time.perf_counter(), _cpu()
    for _ in range(steps):
        next(iterator)
    return steps * batch / (time.perf_counter() - start), (_cpu() - cpu) / (steps * batch) * 1e6


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def synthetic_manifest(num_images: int, num_identities: int, num_shards: int, seed: int = 0) -> str:
    """Manifest JSON text with ``num_images`` records of ``num_identities`` people in ``num_shards`` shards."""
    from facenet_tf.data.manifest import encode_index

    rng = np.random.default_rng(seed)
    counts = rng.multinomial(num_images - 2 * num_identities, np.full(num_identities, 1 / num_identities)) + 2
    labels = np.repeat(np.arange(num_identities), counts)
    shard_of = rng.integers(0, num_shards, labels.size)
    shards = []
    for s in range(num_shards):
        mine = labels[shard_of == s]
        ids, n = np.unique(mine, return_counts=True)
        lengths = rng.integers(8_000, 40_000, mine.size)
        offsets = np.concatenate([[0], np.cumsum(lengths + 16)[:-1]])
        shards.append({"file": f"data-x/shard-{s:05d}-of-{num_shards:05d}.tfrecord", "records": int(mine.size),
                       "bytes": int(offsets[-1] + lengths[-1] + 16), "index": encode_index(ids, n, offsets, lengths)})
    return json.dumps({"format": "facenet_tf.manifest/1", "num_images": int(num_images),
                       "identities": {"names": [f"id{i:06d}" for i in range(num_identities)], "images": counts.tolist()},
                       "shards": shards})


def index_cost(num_images: int, num_identities: int, num_shards: int, min_images: int, folder: str):
    """Read a synthetic ``manifest.json`` and build the sampler's index from it.

    Returns:
        ``(seconds, index bytes per image, peak traced bytes per image, manifest bytes, index)``;
        the peak covers reading the file, parsing it and building the index.
    """
    from facenet_tf.data.manifest import ShardIndex

    path = os.path.join(folder, "manifest.json")
    text = synthetic_manifest(num_images, num_identities, num_shards)
    with open(path, "w") as f:
        f.write(text)
    # The index is built only from shards that exist at their recorded size (the integrity check
    # every reader makes): sparse files of that size, which take no disk and are never read here.
    for shard in json.loads(text)["shards"]:
        shard_path = os.path.join(folder, shard["file"])
        os.makedirs(os.path.dirname(shard_path), exist_ok=True)
        with open(shard_path, "wb") as f:
            f.truncate(shard["bytes"])

    def build():
        with open(path) as f:
            return ShardIndex.from_manifest(json.loads(f.read()), folder, min_images=min_images)

    start = time.perf_counter()
    index = build()
    seconds = time.perf_counter() - start
    del index
    tracemalloc.start()
    index = build()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, index.nbytes / index.num_images, peak / num_images, os.path.getsize(path), index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder of identities (default: ORL as 250x250 JPEGs)")
    parser.add_argument("--orl-dir", default=orl_dir())
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--identities-per-batch", type=int, default=16)
    parser.add_argument("--images-per-identity", type=int, default=4)
    parser.add_argument("--steps", type=int, default=40, help="batches timed per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--index-images", type=int, default=1_000_000)
    parser.add_argument("--index-identities", type=int, default=100_000)
    args = parser.parse_args()

    import tensorflow as tf

    from facenet_tf.data import PKConfig, SkipReport, scan_directory
    from facenet_tf.data.catalog import usable_catalog
    from facenet_tf.data.images import decode_image, resize
    from facenet_tf.data.prepare import PrepareConfig, prepare
    from facenet_tf.data.sampler import pk_dataset
    from facenet_tf.data.tfrecord import pk_dataset_from_shards

    work = tempfile.mkdtemp(prefix="input_speed-")
    try:
        data_dir = args.data_dir or jpeg_folder(args.orl_dir, os.path.join(work, "faces"), 250)
        size = (args.image_size, args.image_size)
        pk = PKConfig(args.identities_per_batch, args.images_per_identity, seed=0)
        batch = pk.batch_size
        catalog = usable_catalog(scan_directory(data_dir, min_images=1), SkipReport(), min_images=pk.images_per_identity)
        start = time.perf_counter()
        prepared = prepare(data_dir, os.path.join(work, "prepared"), PrepareConfig(num_shards=8))
        prepare_seconds = time.perf_counter() - start
        paths = list(catalog.paths)

        def plain():
            return (tf.data.Dataset.from_tensor_slices(paths).repeat()
                    .map(lambda p: resize(decode_image(tf.io.read_file(p)), size), num_parallel_calls=tf.data.AUTOTUNE)
                    .batch(batch).prefetch(tf.data.AUTOTUNE))

        streams = {
            "plain decode + resize (reference)": plain,
            "P×K from folder (files)": lambda: pk_dataset(catalog, size, pk, augment=None),
            "P×K from shards (by offset)": lambda: pk_dataset_from_shards(prepared.output_dir, size, pk, augment=None),
            "P×K from shards, TF-ops reader (tf.data service)": lambda: pk_dataset_from_shards(
                prepared.output_dir, size, pk, augment=None, reader="tf"),
        }
        # Other processes' load changes from minute to minute: each stream is timed between two
        # reference runs and compared with their mean (a paired ratio), round after round.
        ref_name = "plain decode + resize (reference)"
        rates = {name: [] for name in streams}
        cpu = {name: [] for name in streams}
        ratios = {name: [] for name in streams if name != ref_name}
        for _ in range(args.rounds):
            before = rate(plain(), batch, args.steps)
            rates[ref_name].append(before[0])
            cpu[ref_name].append(before[1])
            for name in ratios:
                measured = rate(streams[name](), batch, args.steps)
                after = rate(plain(), batch, args.steps)
                rates[name].append(measured[0])
                cpu[name].append(measured[1])
                rates[ref_name].append(after[0])
                cpu[ref_name].append(after[1])
                ratios[name].append(measured[0] / ((before[0] + after[0]) / 2))
                before = after
        median = {name: statistics.median(r) for name, r in rates.items()}
        ratio = {name: statistics.median(r) for name, r in ratios.items()}
        ratio[ref_name] = 1.0

        seconds, bytes_per_image, peak_per_image, manifest_bytes, index = index_cost(
            args.index_images, args.index_identities, 64, pk.images_per_identity, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.node()} {os.cpu_count()} CPUs, load {load:.1f}; TensorFlow {tf.__version__}, "
          f"NumPy {np.__version__}, Python {platform.python_version()}")
    print(f"# {catalog.num_images} images of {catalog.num_identities} identities, 250x250 JPEG → {size[0]}x{size[1]}, "
          f"batches of {pk.identities_per_batch}x{pk.images_per_identity}; {args.rounds} rounds of {args.steps} batches; "
          f"prepare (8 shards, {PrepareConfig().processes} workers): {prepare_seconds:.1f} s")
    print()
    print("| stream | images/s (median) | CPU µs/image (median) | / reference (median of paired ratios) | ratios |")
    print("|---|---:|---:|---:|---|")
    for name, r in rates.items():
        shown = ", ".join(f"{x:.2f}" for x in ratios.get(name, []))
        print(f"| {name} | {median[name]:.0f} | {statistics.median(cpu[name]):.0f} | {ratio[name]:.2f} | {shown} |")
    print()
    print("| sampler index | images | identities | kept (≥ K) | manifest MB | read + build s | index bytes/image "
          "| peak bytes/image while building |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| manifest.json → ShardIndex | {args.index_images} | {args.index_identities} | {index.num_identities} | "
          f"{manifest_bytes / 2**20:.1f} | {seconds:.2f} | {bytes_per_image:.1f} | {peak_per_image:.0f} |")
    print(json.dumps({
        "folders_over_decode": round(ratio["P×K from folder (files)"], 3),
        "shards_over_decode": round(ratio["P×K from shards (by offset)"], 3),
        "shards_tf_reader_over_decode": round(ratio["P×K from shards, TF-ops reader (tf.data service)"], 3),
        "index_1m_seconds": round(seconds, 3),
        "index_1m_bytes_per_image": round(bytes_per_image, 2),
        "index_1m_peak_bytes_per_image": round(peak_per_image, 1),
        "index_1m_manifest_mb": round(manifest_bytes / 2**20, 1),
        "reference_images_per_second": round(median[ref_name], 1),
        "load_average": round(load, 2),
    }))


if __name__ == "__main__":
    run(main, "input_speed.py")
