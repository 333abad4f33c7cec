"""Benchmark: exact gallery search with NumPy vs faiss, and SQLite enrolment throughput.

Search runs through :class:`facenet_tf.gallery.EmbeddingIndex`, the code path
:class:`~facenet_tf.gallery.Gallery` uses, on random 128-d float32 unit vectors built
in memory (1M x 128 float32 = 512 MB; the faiss index holds a second copy). NumPy is the
reference, measured in the same run; the last columns are faiss time / NumPy time.
Enrolment is timed through a real SQLite gallery.

Run from the repository root (needs faiss-cpu, the extra ``facenet_tf[index]``)::

    PYTHONPATH=. python benchmarks/gallery_search.py --sizes 10000 1000000
"""

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time

import numpy as np

from facenet_tf.gallery import EmbeddingIndex, Gallery


def unit_vectors(rng, n, dim):
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in place, chunk by chunk: no float64 copy
        chunk = vectors[start : start + 100_000]
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


def median_seconds(fn, repeats):
    fn()  # warm-up: first call pays lazy imports and page faults
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def time_search(vectors, queries, backend, single_repeats, batch_repeats):
    start = time.perf_counter()
    index = EmbeddingIndex(vectors, "squared_l2", backend)
    build = time.perf_counter() - start
    singles = iter(range(10**9))
    single = median_seconds(
        lambda: index.search(queries[next(singles) % len(queries)][None], k=1), single_repeats
    )
    batch = median_seconds(lambda: index.search(queries, k=1), batch_repeats) / len(queries)
    rows = index.search(queries, k=1)[1]
    return {"build": build, "single": single, "batch": batch, "rows": rows}


def time_enrolment(rng, n, dim, batch_size):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bench.gallery")
        vectors = unit_vectors(rng, n, dim)
        names = [f"person_{i}" for i in range(n)]
        with Gallery.open(path, "bench", dim, index="numpy") as gallery:
            start = time.perf_counter()
            for lo in range(0, n, batch_size):
                gallery.enroll(names[lo : lo + batch_size], vectors[lo : lo + batch_size])
            enrol = time.perf_counter() - start
        start = time.perf_counter()
        with Gallery.open(path, "bench", dim, create=False) as gallery:
            gallery.search(vectors[:1])  # first search reads every embedding
        load = time.perf_counter() - start
    return enrol, load


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=100, help="batch size")
    parser.add_argument("--single-repeats", type=int, default=20)
    parser.add_argument("--batch-repeats", type=int, default=5)
    parser.add_argument("--enrol-size", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import faiss

    rng = np.random.default_rng(args.seed)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, faiss {faiss.__version__}, "
        f"sqlite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs ({platform.machine()}), "
        f"faiss threads {faiss.omp_get_max_threads()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print(f"exact k=1 search, squared_l2, {args.dim}-d float32 unit vectors\n")
    print("| entries | backend | build s | 1 query ms | batch of 100 ms/query | same top-1 |")
    print("|---:|---|---:|---:|---:|---|")
    ratios, figures = [], {"search": {}, "enrolment": {}}
    for n in args.sizes:
        vectors = unit_vectors(rng, n, args.dim)
        queries = unit_vectors(rng, args.queries, args.dim)
        results = {}
        for backend in ("numpy", "faiss"):
            results[backend] = time_search(
                vectors, queries, backend, args.single_repeats, args.batch_repeats
            )
        same = np.array_equal(results["numpy"]["rows"], results["faiss"]["rows"])
        figures["search"][n] = {backend: {"build_s": round(r["build"], 4), "one_query_ms": round(r["single"] * 1e3, 4),
                                          "batch_ms_per_query": round(r["batch"] * 1e3, 4)}
                                for backend, r in results.items()}
        figures["search"][n]["same_top1"] = bool(same)
        for backend, r in results.items():
            print(
                f"| {n:,} | {backend} | {r['build']:.3f} | {r['single'] * 1e3:.3f} | "
                f"{r['batch'] * 1e3:.3f} | {'yes' if same else 'NO'} |"
            )
        ratios.append(
            (n, *(results["faiss"][key] / results["numpy"][key] for key in ("single", "batch")))
        )
        del vectors, results

    print("\n| entries | faiss/numpy, 1 query | faiss/numpy, batch of 100 |")
    print("|---:|---:|---:|")
    for n, single, batch in ratios:
        print(f"| {n:,} | {single:.2f} | {batch:.2f} |")

    print("\n| SQLite enrolment | entries/s | reopen + load + first search s |")
    print("|---|---:|---:|")
    n = args.enrol_size
    for batch_size in (n, 100):
        enrol, load = time_enrolment(rng, n, args.dim, batch_size)
        label = f"{n:,} entries, {n // batch_size} enroll() call(s) of {batch_size:,}"
        print(f"| {label} | {n / enrol:,.0f} | {load:.3f} |")
        figures["enrolment"][f"{n}x{batch_size}"] = {"entries_per_s": round(n / enrol), "reopen_load_search_s": round(load, 3)}
    print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
