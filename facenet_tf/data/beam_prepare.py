"""``prepare --runner <BeamRunner>``: the prepare transform as an Apache Beam pipeline.

Same plan, same reader, same records and the same manifest as the local runner
(:mod:`facenet_tf.data.prepare`); what changes is who does the work. The pipeline::

    ReadFromText(inputs.jsonl) ─► ParDo(EncodeImage) ─┬─► WriteToTFRecord (Beam's sink) ─► shard-SSSSS-of-NNNNN.tfrecord
                                                      └─► skipped ─► WriteToText ─► skipped-*.jsonl

The file list goes through a text file rather than ``beam.Create`` so a million paths do not end
up in the job graph. Beam decides which record lands in which shard, so the launcher then scans
the shards once for each record's byte offset and writes ``skipped.json`` and ``manifest.json``
(:func:`facenet_tf.data.publish.publish`). File access goes through Beam's ``FileSystems`` and
TensorFlow's ``gfile``, so ``--data-dir`` and ``--output`` may be ``gs://`` folders on Dataflow
(``--data-dir gs://…`` lists ``<root>/<identity>/<image>``, one level).

``DirectRunner`` runs Beam's in-process Python runner (Beam's own ``DirectRunner`` would first
download its Prism binary from GitHub; nothing is downloaded here). Needs the ``[beam]`` extra:
``pip install 'facenet_tf[beam]'`` (``apache-beam[tfrecord]``).
"""

from __future__ import annotations

import json
from typing import Dict, Iterator, List

import numpy as np

from facenet_tf.data.catalog import IMAGE_EXTENSIONS, IdentityCatalog, natural_key
from facenet_tf.data.manifest import build_manifest, join
from facenet_tf.data.reader import BadImage, ImageLimits, encoded
from facenet_tf.data.report import SkipReport, StrictError
from facenet_tf.errors import FacenetError

try:
    import apache_beam as beam
except ImportError:  # the [beam] extra is optional: say so when a Beam runner is asked for
    beam = None


def _require_beam() -> None:
    if beam is None:
        raise FacenetError("prepare --runner with a Beam runner needs Apache Beam: pip install 'facenet_tf[beam]'")


def _read_bytes(path: str) -> bytes:
    if "://" not in path:
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise BadImage(path, "missing") from None
        except OSError as err:
            raise BadImage(path, "unreadable", err.strerror or err) from None
    from apache_beam.io.filesystems import FileSystems

    try:
        with FileSystems.open(path) as f:
            return f.read()
    except Exception as err:  # noqa: BLE001 - each file system raises its own type
        raise BadImage(path, "unreadable", err) from None


if beam is not None:

    class EncodeImage(beam.DoFn):
        """One listed file → its serialized record, or a ``skipped`` entry with the reason."""

        def __init__(self, limits: ImageLimits):
            self.limits = limits

        def process(self, item: Dict) -> Iterator:
            from facenet_tf.data.records import make_example

            try:
                image = encoded(_read_bytes(item["path"]), item["path"], self.limits)
            except BadImage as bad:
                yield beam.pvalue.TaggedOutput("skipped", {"i": item["i"], "path": bad.path, "reason": bad.reason,
                                                           "detail": bad.detail})
                return
            yield make_example(image, item["identity"], item["relpath"])


def list_remote(root: str) -> IdentityCatalog:
    """The catalog of ``root/<identity>/<image>`` on a file system Beam reads (``gs://…``).

    Raises:
        FacenetError: Beam missing, or no image under ``root``.
    """
    _require_beam()
    from apache_beam.io.filesystems import FileSystems

    root = root.rstrip("/")
    matched = FileSystems.match([f"{root}/*/*"])[0].metadata_list
    files = sorted((m.path for m in matched if m.path.lower().endswith(IMAGE_EXTENSIONS)),
                   key=lambda p: [natural_key(part) for part in p[len(root) + 1:].split("/")])
    names: List[str] = []
    labels: List[int] = []
    for path in files:
        identity = path[len(root) + 1:].split("/")[0]
        if not names or names[-1] != identity:
            names.append(identity)
        labels.append(len(names) - 1)
    if not names:
        raise FacenetError(f"{root} holds no <identity>/<image> files ({', '.join(IMAGE_EXTENSIONS)})")
    return IdentityCatalog(tuple(files), np.asarray(labels, np.int32), tuple(names), root)


def run_beam(plan, output_dir: str, config, report: SkipReport, owner=None):
    """Run the prepare pipeline of ``plan`` on ``config.runner`` and publish the result.

    Returns:
        :class:`facenet_tf.data.publish.PrepareResult`.

    Raises:
        FacenetError: Beam missing, the pipeline failing, or (strict) a bad file; the run's
            data folder is then removed and nothing is published.
    """
    _require_beam()
    import tensorflow as tf

    from facenet_tf.data.publish import PrepareResult, publish
    from facenet_tf.data.records import scan_shard

    gfile = tf.io.gfile
    work = join(output_dir, plan.data_dir)
    created = not gfile.exists(output_dir)
    if owner is not None:  # a local folder: claimed, the data folder recorded before it is written
        owner.commit()
        owner.add(plan.data_dir)

    def discard():
        if owner is not None:
            owner.list_new_files(plan.data_dir)
            owner.remove(plan.data_dir, release=True)  # what this run wrote there, never a user's file
            owner.discard()
            return
        gfile.rmtree(work)
        if created and not gfile.listdir(output_dir):
            gfile.rmtree(output_dir)

    if owner is not None:
        owner.remove(plan.data_dir)  # Beam does not resume: a plan is rewritten whole
    elif gfile.exists(work):
        gfile.rmtree(work)
    gfile.makedirs(work)
    inputs = _write_inputs(plan, work)
    num_shards = len(plan.shards)
    runner, options = _runner(config)
    try:
        _run_pipeline(config, runner, options, inputs, work, num_shards)
    except Exception as err:  # noqa: BLE001 - a runner's failure, reported in one line
        discard()
        first = (str(err).strip().splitlines() or [type(err).__name__])[-1][:300]
        raise FacenetError(f"the Beam pipeline failed on {config.runner}: {first}") from None
    try:
        for entry in _read_skipped(work):
            report.add(BadImage(entry["path"], entry["reason"], entry["detail"]))
    except StrictError:
        discard()
        raise
    shards = []
    for s in range(num_shards):
        file = plan.shard_file(s)
        records, size = scan_shard(join(output_dir, file))
        shards.append((file, len(records), size, records))
    for name in gfile.glob(join(work, "skipped-*.jsonl")) + [inputs]:
        gfile.remove(name)
    if owner is not None:
        owner.list_new_files(plan.data_dir)
    manifest = build_manifest(plan=plan.id, runner=config.runner, source=plan.source, transform=plan.transform,
                              names=plan.names, shards=shards, min_images=config.min_images, report=report)
    publish(output_dir, manifest, report, plan, owner)
    return PrepareResult(output_dir, manifest, report, written=num_shards)


def _write_inputs(plan, work: str) -> str:
    """The pipeline's input list, one JSON line per image (``i``, ``path``, ``relpath``,
    ``identity``), written as ``work``/inputs.jsonl; its path."""
    import tensorflow as tf

    inputs = join(work, "inputs.jsonl")
    with tf.io.gfile.GFile(inputs, "w") as f:
        for i, (path, rel, identity) in enumerate(zip(plan.paths, plan.relpaths, plan.identities)):
            f.write(json.dumps({"i": i, "path": path, "relpath": rel, "identity": identity}) + "\n")
    return inputs


def _runner(config):
    """``(runner, options)`` for ``beam.Pipeline``: ``config.runner`` with ``config.beam_args``."""
    from apache_beam.options.pipeline_options import PipelineOptions

    runner = None
    if config.runner == "DirectRunner":
        # Beam's DirectRunner first tries Prism, a binary it downloads from GitHub at run time;
        # run its in-process Python runner (the one it falls back to) instead: nothing is fetched.
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        runner = FnApiRunner()
        options = PipelineOptions(list(config.beam_args))
    else:
        options = PipelineOptions([f"--runner={config.runner}", *config.beam_args])
    return runner, options


def _run_pipeline(config, runner, options, inputs: str, work: str, num_shards: int) -> None:
    """Read, check and encode every image of ``inputs`` on ``runner``: ``num_shards``
    TFRecord shards ``work``/shard-*.tfrecord and the skipped files' JSON lines
    ``work``/skipped-*.jsonl."""
    with beam.Pipeline(runner=runner, options=options) as pipeline:
        encoded_ = (pipeline
                    | "List files" >> beam.io.ReadFromText(inputs)
                    | "Parse" >> beam.Map(json.loads)
                    | "Read, check, encode" >> beam.ParDo(EncodeImage(config.limits)).with_outputs(
                        "skipped", main="records"))
        _ = encoded_.records | "Write shards" >> beam.io.WriteToTFRecord(
            join(work, "shard"), file_name_suffix=".tfrecord", num_shards=num_shards)
        _ = (encoded_.skipped | "As JSON" >> beam.Map(json.dumps, sort_keys=True)
             | "Write skips" >> beam.io.WriteToText(join(work, "skipped"), file_name_suffix=".jsonl"))


def _read_skipped(work: str) -> list:
    """The skipped files the pipeline wrote into ``work``, in input order."""
    import tensorflow as tf

    skipped = []
    for name in sorted(tf.io.gfile.glob(join(work, "skipped-*.jsonl"))):
        with tf.io.gfile.GFile(name, "r") as f:
            skipped += [json.loads(line) for line in f if line.strip()]
    return sorted(skipped, key=lambda e: e["i"])
