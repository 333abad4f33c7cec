"""``facenet-tf prepare``: an identity folder → TFRecord shards + ``manifest.json`` + ``skipped.json``.

The steps, the same for both runners:

1. walk the folder (:func:`~facenet_tf.data.catalog.scan_directory`: loops and unreadable folders
   are skipped and reported) and make a :class:`Plan`: every file with its size and time, the
   seeded assignment of files to shards, and the plan id, a hash of all of it and of the
   transform, which names the data folder ``data-<plan>/``;
2. read, check and encode every image with the one reader
   (:func:`facenet_tf.data.reader.encoded`: the file's own bytes when TensorFlow decodes them,
   else a PNG of the corrected pixels; bad files skipped with their reason), and write the
   records: here, in worker processes (``workers``) feeding one writer; or as an Apache Beam
   pipeline with Beam's TFRecord sink (:mod:`facenet_tf.data.beam_prepare`);
3. count the usable images of each identity, leave out those with fewer than ``min_images``,
   number the rest in natural name order, and write ``skipped.json`` and then ``manifest.json``
   (:mod:`facenet_tf.data.manifest`), each atomically. The manifest is the commit: until it is
   renamed into place, readers see the previous run's complete output. Folders of earlier runs
   are deleted after it: only those the output folder's ownership record lists
   (:mod:`facenet_tf.ownership`); a file ``prepare`` did not write is never touched, whatever
   its name.

The local runner is resumable: every shard is written to a temporary name, renamed when complete
and followed by a small ``.parts/`` record of its index and skips; a run killed at any point and
started again with the same data and settings (same plan) keeps the finished shards and writes
the others, and the result is byte for byte that of an uninterrupted run. Shards hold each
identity's records together (files are shuffled across shards by the seed, then grouped).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import shutil
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.artifacts import atomic_path
from facenet_tf.ownership import claim, environment_error
from facenet_tf.data.catalog import IdentityCatalog, scan_directory
from facenet_tf.data.manifest import FORMAT, MANIFEST_FILE, build_manifest, verified_shard_paths, current_manifest, join
from facenet_tf.data.prepare_config import LOCAL, PrepareConfig
from facenet_tf.data.reader import BadImage, encode_files
from facenet_tf.data.publish import PARTS, Plan, PrepareResult, publish
from facenet_tf.data.report import REPORT_FILE, SkipReport, StrictError
from facenet_tf.errors import FacenetError

logger = logging.getLogger("facenet_tf")

#: Images per task handed to a worker process.
CHUNK = 64


def transform_of(config: PrepareConfig) -> Dict[str, Any]:
    """The transform recorded in the manifest: enough to redo it."""
    return {
        "reader": "facenet_tf.data.reader (EXIF orientation, CMYK/palette/16-bit/alpha → 8-bit RGB, first frame)",
        "stored": "original bytes of JPEG/PNG/BMP that TensorFlow decodes to the reader's pixels, "
                  "else PNG of the reader's pixels",
        "record": {"image": "bytes", "identity": "folder name", "path": "file relative to the source folder"},
        "max_pixels": config.max_pixels,
        "min_images": config.min_images,
        "num_shards": config.num_shards,
        "seed": config.seed,
    }


def make_plan(catalog: IdentityCatalog, config: PrepareConfig, kind: str) -> Plan:
    """The :class:`Plan` of a scanned folder (``kind``: ``"local"`` or ``"beam"``, whose shards differ)."""
    root = catalog.root
    relpaths = tuple(os.path.relpath(p, root).replace(os.sep, "/") if root else os.path.basename(p)
                     for p in catalog.paths)
    identities = tuple(catalog.names[label] for label in catalog.labels)
    transform = transform_of(config)
    digest = hashlib.sha256(json.dumps({"format": FORMAT, "kind": kind, "transform": transform},
                                       sort_keys=True).encode())
    for path, rel, identity in zip(catalog.paths, relpaths, identities):
        try:
            stat = os.stat(path)
            stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            stamp = "unreadable"
        digest.update(f"{identity}\0{rel}\0{stamp}\n".encode())
    order = np.random.default_rng(config.seed).permutation(catalog.num_images)
    shards = tuple(np.sort(part) for part in np.array_split(order, config.num_shards))
    return Plan(digest.hexdigest()[:12], os.path.abspath(root) if root else "", tuple(catalog.paths), relpaths,
                identities, tuple(catalog.names), shards, transform)


def prepare(data_dir: str, output_dir: str, config: PrepareConfig = PrepareConfig(),
            progress: Optional[Callable[[int], None]] = None, allow_existing_files: bool = False) -> PrepareResult:
    """Prepare an identity folder into ``output_dir`` (see the module docstring).

    Args:
        data_dir: one sub-folder of images per identity.
        output_dir: new, empty, or written by an earlier ``prepare`` (its data is replaced).
        config: :class:`PrepareConfig`.
        progress: optional callable receiving the number of images done (local runner).
        allow_existing_files: write into an output folder holding files ``prepare`` did not
            write, beside them (never touching them).

    Returns:
        :class:`PrepareResult`.

    Raises:
        FacenetError: bad settings or folders, an output folder holding other files (unless
            ``allow_existing_files``) or overlapping ``data_dir``, Beam missing for a Beam
            runner, or (strict) the first bad file; nothing is then written.
    """
    config.validate()
    owner = _claim(output_dir, data_dir, allow_existing_files)
    report = SkipReport(config.strict)
    if "://" in data_dir:
        if config.runner == LOCAL:
            raise FacenetError(f"the local runner reads local folders; for {data_dir} use a Beam runner (--runner)")
        from facenet_tf.data.beam_prepare import list_remote

        catalog = list_remote(data_dir)
    else:
        catalog = scan_directory(data_dir, min_images=1, report=report)
    return prepare_catalog(catalog, output_dir, config, report, progress, owner=owner)


def prepare_catalog(catalog: IdentityCatalog, output_dir: str, config: PrepareConfig = PrepareConfig(),
                    report: Optional[SkipReport] = None,
                    progress: Optional[Callable[[int], None]] = None, owner=None,
                    allow_existing_files: bool = False) -> PrepareResult:
    """:func:`prepare` of an already scanned catalog (``report`` holds the scan's skips).

    ``owner``: the output folder's :class:`facenet_tf.ownership.Ownership` when already claimed.
    At most one shard per image is written: a larger ``num_shards`` is capped (with a warning).
    """
    config.validate()
    if owner is None:
        owner = _claim(output_dir, catalog.root or None, allow_existing_files)
    if config.num_shards > max(catalog.num_images, 1):
        logger.warning("prepare: %d shards asked for %d images; writing %d (a shard holds at least one image)",
                       config.num_shards, catalog.num_images, catalog.num_images)
        config = dataclasses.replace(config, num_shards=max(catalog.num_images, 1))
    report = report if report is not None else SkipReport(config.strict)
    try:
        if config.runner != LOCAL:
            from facenet_tf.data.beam_prepare import run_beam

            result = run_beam(make_plan(catalog, config, "beam"), output_dir, config, report, owner=owner)
        else:
            result = _run_local(make_plan(catalog, config, LOCAL), output_dir, config, report, progress, owner)
    except Exception as err:  # noqa: BLE001 - OS or TensorFlow file errors on a full or read-only disk
        fault = environment_error(err, output_dir)
        if fault is None:
            raise
        raise fault from None
    result.report.log(logger, "prepare")
    return result


def _claim(output_dir: str, data_dir: Optional[str], allow_existing: bool):
    """Check ``output_dir`` for ``prepare`` (:func:`facenet_tf.ownership.claim`, written later);
    ``None`` for a remote output (``gs://…``)."""
    if "://" in output_dir:
        return None
    return claim(output_dir, "prepare", (MANIFEST_FILE, REPORT_FILE), allow_existing=allow_existing,
                 inputs=[data_dir], create=False)


def _up_to_date(plan: Plan, output_dir: str) -> Optional[PrepareResult]:
    manifest = current_manifest(output_dir)
    if manifest is None or manifest.get("plan") != plan.id or manifest.get("runner") != LOCAL:
        return None
    try:
        verified_shard_paths(manifest, output_dir)
    except FacenetError:
        return None
    report_path = join(output_dir, REPORT_FILE)
    if not os.path.isfile(report_path):
        return None
    with open(report_path) as f:
        report = SkipReport.from_dict(json.load(f))
    return PrepareResult(output_dir, manifest, report, up_to_date=True)


def _run_local(plan: Plan, output_dir: str, config: PrepareConfig, report: SkipReport,
               progress: Optional[Callable[[int], None]], owner) -> PrepareResult:
    done = _up_to_date(plan, output_dir) if owner is None or owner.owns(MANIFEST_FILE) else None
    if done is not None:
        if progress is not None:
            progress(len(plan.paths))
        return done
    if owner is not None:
        owner.commit()
        owner.add(plan.data_dir, *plan.temporaries)
        owner.add_files(plan.data_dir, plan.data_files)
    work = os.path.join(output_dir, plan.data_dir)
    parts = os.path.join(work, PARTS)
    os.makedirs(parts, exist_ok=True)
    for rel in plan.data_files:  # temporaries of a killed run: only the names this plan writes
        path = os.path.join(work, rel)  # a link there goes too, never what it leads to
        if os.path.basename(rel).startswith(".") and (os.path.islink(path) or os.path.isfile(path)):
            os.unlink(path)
    for name in os.listdir(parts):  # a killed run's part records, written aside (atomic_path's names)
        ours = owner is None or owner.leftover(plan.data_dir, f"{PARTS}/{name}")  # never a user's file by its name
        if name.startswith(".shard-") and ".json.tmp-" in name and ours:
            _remove(os.path.join(parts, name))
    finished = [s for s in range(len(plan.shards))
                if os.path.isfile(_part_path(parts, s)) and os.path.isfile(join(output_dir, plan.shard_file(s)))]
    pending = sorted(set(range(len(plan.shards))) - set(finished))
    if progress is not None and finished:
        progress(sum(len(plan.shards[s]) for s in finished))
    shards = []
    try:
        _write_shards(plan, output_dir, pending, config, progress)
        for s in range(len(plan.shards)):
            with open(_part_path(parts, s)) as f:
                part = json.load(f)
            for entry in part["skipped"]:  # strict: also a bad file found by an earlier, killed run
                report.add(BadImage(entry["path"], entry["reason"], entry["detail"]))
            shards.append((plan.shard_file(s), len(part["records"]), part["bytes"],
                           [tuple(r) for r in part["records"]]))
    except StrictError:  # leave nothing behind
        if owner is not None:
            owner.remove(plan.data_dir, release=True)
            owner.discard()
        raise
    manifest = build_manifest(plan=plan.id, runner=LOCAL, source=plan.source, transform=plan.transform,
                              names=plan.names, shards=shards, min_images=config.min_images, report=report)
    publish(output_dir, manifest, report, plan, owner)
    return PrepareResult(output_dir, manifest, report, written=len(pending), reused=len(finished))


def _part_path(parts: str, shard: int) -> str:
    return os.path.join(parts, f"shard-{shard:05d}.json")


def _write_shards(plan: Plan, output_dir: str, pending: Sequence[int], config: PrepareConfig,
                  progress: Optional[Callable[[int], None]]) -> None:
    """Encode the pending shards' images in worker processes; write each shard in plan order."""
    import tensorflow as tf

    from facenet_tf.data.records import FRAMING, make_example

    tasks = []  # (shard, last chunk of the shard?, rows)
    for s in pending:
        rows = plan.shards[s]
        pieces = [rows[i:i + CHUNK] for i in range(0, len(rows), CHUNK)] or [rows]
        tasks += [(s, j == len(pieces) - 1, piece) for j, piece in enumerate(pieces)]
    results = _ordered_map(encode_files, [([plan.paths[r] for r in rows], config.limits) for _, _, rows in tasks],
                           config.processes)
    writer = tmp = None
    records: List[Tuple[str, int, int]] = []
    shard_report = SkipReport(config.strict)
    offset = 0
    try:
        for (s, last, rows), encoded in zip(tasks, results):
            if writer is None:
                target = join(output_dir, plan.shard_file(s))
                tmp = os.path.join(os.path.dirname(target), "." + os.path.basename(target) + ".tmp")
                writer = tf.io.TFRecordWriter(tmp)
            for row, item in zip(rows, encoded):
                if isinstance(item, BadImage):
                    shard_report.add(item)
                    continue
                example = make_example(item, plan.identities[row], plan.relpaths[row])
                writer.write(example)
                records.append((plan.identities[row], offset, len(example)))
                offset += FRAMING + len(example)
            if progress is not None:
                progress(len(rows))
            if last:
                writer.close()
                writer = None
                os.replace(tmp, join(output_dir, plan.shard_file(s)))
                part = {"plan": plan.id, "shard": s, "bytes": offset, "records": records,
                        "skipped": shard_report.skipped}
                with atomic_path(_part_path(os.path.join(output_dir, plan.data_dir, PARTS), s)) as path:
                    with open(path, "w") as f:
                        json.dump(part, f)
                records, shard_report, offset = [], SkipReport(config.strict), 0
    finally:
        if writer is not None:
            writer.close()
            _remove(tmp)
        results.close()


def _ordered_map(fn, args: Sequence[tuple], workers: int) -> Iterator:
    """``fn(*a)`` for each ``a``, in order; in ``workers`` processes with a bounded window in flight."""
    if workers <= 1 or len(args) <= 1:
        for a in args:
            yield fn(*a)
        return
    import multiprocessing

    from facenet_tf.workers import ignore_interrupts, stop_pool

    # spawn: workers import only the reader (no TensorFlow), and never inherit TF's threads.
    pool = concurrent.futures.ProcessPoolExecutor(min(workers, len(args)), mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=ignore_interrupts)
    queue: collections.deque = collections.deque()
    remaining = iter(args)
    try:
        for a in itertools.islice(remaining, 2 * workers):
            queue.append(pool.submit(fn, *a))
        while queue:
            try:
                result = queue.popleft().result()
            except concurrent.futures.process.BrokenProcessPool:
                raise FacenetError("prepare's worker processes stopped (killed, out of memory, or started from a "
                                   "script without an `if __name__ == '__main__':` guard); rerun to resume, or use "
                                   "workers=1") from None
            following = next(remaining, None)
            if following is not None:
                queue.append(pool.submit(fn, *following))
            yield result
    except BaseException:  # the caller stopped early, an error, Ctrl-C or SIGTERM: end the workers now
        stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _remove(path: Optional[str]) -> None:
    if path is None:
        return
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.unlink(path)
