"""Tests for facenet_tf.gallery: the persistent gallery and its search backends."""

import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from facenet_tf.gallery.index import FaissSearch
from facenet_tf.distances import pairwise_distances_numpy
from facenet_tf.errors import FacenetError
from facenet_tf.gallery import EmbeddingIndex, Gallery, Match

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIM = 8


def reference_distance(a, b, metric):
    """One pair, straight from the definition."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if metric == "squared_l2":
        return float(np.sum((a - b) ** 2))
    if metric == "l2":
        return float(np.sqrt(np.sum((a - b) ** 2)))
    return float(1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def reference_search(gallery_vectors, query, k, metric):
    """Rows of the k nearest gallery vectors by a Python loop, ties to the lower row."""
    d = [reference_distance(query, g, metric) for g in gallery_vectors]
    rows = sorted(range(len(d)), key=lambda r: (d[r], r))[:k]
    return rows, [d[r] for r in rows]


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "people.gallery")


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def test_create_enroll_reopen_search_round_trip(path, rng):
    vectors = rng.standard_normal((5, DIM)).astype(np.float32)
    names = ["ada", "alan", "ada", "grace", "edsger"]
    with Gallery.open(path, "model-A", DIM) as gallery:
        ids = gallery.enroll(names, vectors, sources=[f"{n}.jpg" for n in names])
        assert len(ids) == 5 and len(set(ids)) == 5
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.endswith(".tmp")]

    with Gallery.open(path, "model-A", DIM, create=False) as gallery:
        assert gallery.distance == "squared_l2"
        assert len(gallery) == 5
        assert gallery.list() == [("ada", 2), ("alan", 1), ("edsger", 1), ("grace", 1)]
        queries = vectors[[3, 0]] + 0.01
        results = gallery.search(queries, k=3)
    for query, neighbors in zip(queries, results):
        rows, distances = reference_search(vectors, query, 3, "squared_l2")
        assert [n.entry_id for n in neighbors] == [ids[r] for r in rows]
        assert [n.name for n in neighbors] == [names[r] for r in rows]
        # float32 embeddings: |a|² - 2ab + |b|² loses ~1e-6 absolute to cancellation.
        np.testing.assert_allclose([n.distance for n in neighbors], distances, atol=1e-5)
    assert results[0][0].name == "grace" and results[1][0].name == "ada"

    row = sqlite3.connect(path).execute(
        "SELECT name, source, enrolled_at FROM entries WHERE id = ?", (ids[1],)
    ).fetchone()
    assert row[:2] == ("alan", "alan.jpg") and row[2].endswith("+00:00")


@pytest.mark.parametrize("backend", ["numpy", "faiss"])
@pytest.mark.parametrize("metric", ["squared_l2", "l2", "cosine"])
def test_search_distances_match_definition(backend, metric, rng):
    if backend == "faiss":
        pytest.importorskip("faiss", reason="faiss-cpu is the optional extra [index]")
    vectors = rng.standard_normal((40, DIM)).astype(np.float32)
    queries = rng.standard_normal((3, DIM)).astype(np.float32)
    distances, rows = EmbeddingIndex(vectors, metric, backend).search(queries, k=4)
    shared = pairwise_distances_numpy(queries, vectors, metric=metric)
    for query, d_row, r_row, shared_row in zip(queries, distances, rows, shared):
        ref_rows, ref_d = reference_search(vectors, query, 4, metric)
        assert list(r_row) == ref_rows
        np.testing.assert_allclose(d_row, ref_d, atol=1e-5)
        np.testing.assert_allclose(d_row, shared_row[r_row], rtol=1e-6, atol=1e-6)


def test_other_model_refused_with_both_fingerprints_and_dims(path):
    Gallery.open(path, "model-A", 128).close()
    expected = (
        f"gallery {path} was built with model model-A (dim 128); this model is model-B "
        "(dim 64): re-enrol or use the matching model"
    )
    with pytest.raises(FacenetError) as error:
        Gallery.open(path, "model-B", 64)
    assert str(error.value) == expected
    same_model_other_dim = r"model-A \(dim 128\); this model is model-A \(dim 64\)"
    with pytest.raises(FacenetError, match=same_model_other_dim):
        Gallery.open(path, "model-A", 64)


def test_other_distance_refused_and_stored_distance_kept(path):
    Gallery.open(path, "m", DIM, distance="cosine").close()
    with pytest.raises(FacenetError, match="uses distance 'cosine'; received distance='l2'"):
        Gallery.open(path, "m", DIM, distance="l2")
    with Gallery.open(path, "m", DIM) as gallery:
        assert gallery.distance == "cosine"


def test_missing_file_without_create(path):
    with pytest.raises(FacenetError, match="does not exist"):
        Gallery.open(path, "m", DIM, create=False)
    assert not os.path.exists(path)


def test_not_a_gallery(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database, just some text that is long enough " * 20)
    with pytest.raises(FacenetError, match="is not a facenet_tf gallery"):
        Gallery.open(text, "m", DIM)
    other_db = tmp_path / "other.sqlite"
    sqlite3.connect(other_db).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(FacenetError, match="is not a facenet_tf gallery"):
        Gallery.open(other_db, "m", DIM)


def test_bad_options_name_the_argument(path):
    with pytest.raises(FacenetError, match="distance must be one of"):
        Gallery.open(path, "m", DIM, distance="manhattan")
    with pytest.raises(FacenetError, match="index must be one of"):
        Gallery.open(path, "m", DIM, index="annoy")
    with pytest.raises(FacenetError, match="embedding_dim must be a positive integer"):
        Gallery.open(path, "m", 0)
    with pytest.raises(FacenetError, match="model_fingerprint must be a non-empty string"):
        Gallery.open(path, "", DIM)
    with Gallery.open(path, "m", DIM) as gallery:
        with pytest.raises(FacenetError, match="k must be a positive integer"):
            gallery.search(np.zeros((1, DIM)), k=0)
        with pytest.raises(FacenetError, match="threshold must be a finite number"):
            gallery.identify(np.zeros((1, DIM)), threshold=float("nan"))


def _bad_enrolments():
    good = np.ones((3, DIM))
    nan = good.copy()
    nan[2, 5] = np.nan
    return {
        "nan_embedding": (["a", "b", "c"], nan, None),
        "float32_overflow": (["a", "b", "c"], good * 1e39, None),
        "wrong_dim": (["a", "b", "c"], np.ones((3, DIM + 1)), None),
        "one_vector_not_a_batch": (["a"], np.ones(DIM), None),
        "empty_name": (["a", " ", "c"], good, None),
        "name_not_a_string": (["a", 5, "c"], good, None),
        "names_one_string": ("abc", good, None),
        "length_mismatch": (["a", "b"], good, None),
        "sources_length_mismatch": (["a", "b", "c"], good, ["a.jpg"]),
    }


@pytest.mark.parametrize("case", sorted(_bad_enrolments()))
def test_enroll_is_all_or_nothing(path, case):
    names, embeddings, sources = _bad_enrolments()[case]
    with Gallery.open(path, "m", DIM) as gallery:
        gallery.enroll(["kept"], np.zeros((1, DIM)))
        with pytest.raises(FacenetError):
            gallery.enroll(names, embeddings, sources)
        assert gallery.list() == [("kept", 1)]
    with Gallery.open(path, "m", DIM) as gallery:
        assert len(gallery) == 1


def test_enroll_rolls_back_when_the_database_fails_midway(path):
    Gallery.open(path, "m", DIM).close()
    with sqlite3.connect(path) as db:
        # A trigger that fails on the third row: the first two must not stay behind.
        db.execute(
            "CREATE TRIGGER no_c BEFORE INSERT ON entries WHEN NEW.name = 'c' "
            "BEGIN SELECT RAISE(ABORT, 'no c'); END"
        )
    with Gallery.open(path, "m", DIM) as gallery:
        with pytest.raises(FacenetError, match="cannot write gallery .*no c; nothing was changed"):
            gallery.enroll(["a", "b", "c"], np.ones((3, DIM)))
        assert len(gallery) == 0


def test_cosine_gallery_rejects_zero_vectors(path):
    with Gallery.open(path, "m", DIM, distance="cosine") as gallery:
        with pytest.raises(FacenetError, match="all zeros"):
            gallery.enroll(["a"], np.zeros((1, DIM)))


def test_remove_and_list(path, rng):
    with Gallery.open(path, "m", DIM) as gallery:
        gallery.enroll(["a", "b", "a", "c"], rng.standard_normal((4, DIM)))
        assert gallery.remove("a") == 2
        assert gallery.remove("nobody") == 0
        assert gallery.list() == [("b", 1), ("c", 1)]
        assert len(gallery) == 2
        assert {n.name for n in gallery.search(rng.standard_normal((1, DIM)), k=5)[0]} == {"b", "c"}
        assert gallery.enroll([], np.zeros((0, DIM))) == []
        assert gallery.search(np.zeros((0, DIM)), k=3) == []


def test_identify_known_and_unknown(path):
    people = np.eye(DIM)[:3] * 2.0  # squared distance 8 between any two people
    with Gallery.open(path, "m", DIM) as gallery:
        empty = gallery.identify(np.zeros((1, DIM)), threshold=1.0)
        assert empty == [Match(None, float("inf"), None, None)]
        ids = gallery.enroll(["ada", "alan", "grace"], people)
        queries = np.stack([people[1] + 0.1 * np.eye(DIM)[0], np.full(DIM, -3.0)])
        known, unknown = gallery.identify(queries, threshold=1.0)
    assert known == Match("alan", pytest.approx(0.01, abs=1e-5), ids[1], "alan")
    assert unknown.name is None and unknown.distance > 1.0 and unknown.nearest_name is not None


def test_search_sees_entries_committed_by_another_connection(path, rng):
    with Gallery.open(path, "m", DIM) as reader, Gallery.open(path, "m", DIM) as writer:
        writer.enroll(["a"], rng.standard_normal((1, DIM)))
        assert [n.name for n in reader.search(rng.standard_normal((1, DIM)), k=5)[0]] == ["a"]
        writer.enroll(["b"], rng.standard_normal((1, DIM)))
        assert len(reader.search(rng.standard_normal((1, DIM)), k=5)[0]) == 2


def test_index_faiss_without_faiss_names_the_extra(path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` fail
    with pytest.raises(FacenetError, match=r"install facenet_tf\[index\] \(faiss-cpu\)"):
        Gallery.open(path, "m", DIM, index="faiss")
    monkeypatch.setattr(FaissSearch, "auto_from", 1)
    with Gallery.open(path, "m", DIM, index="auto") as gallery:
        gallery.enroll(["a"], np.ones((1, DIM)))
        assert gallery.search_backend == "numpy"
        assert gallery.search(np.ones((1, DIM)))[0][0].name == "a"


def test_auto_switches_to_faiss_above_the_threshold(path, monkeypatch):
    pytest.importorskip("faiss", reason="faiss-cpu is the optional extra [index]")
    monkeypatch.setattr(FaissSearch, "auto_from", 3)
    with Gallery.open(path, "m", DIM) as gallery:
        gallery.enroll(["a", "b"], np.eye(DIM)[:2])
        assert gallery.search_backend == "numpy"
        gallery.enroll(["c"], np.eye(DIM)[2:3])
        assert gallery.search_backend == "faiss"
        nearest = gallery.search(np.eye(DIM)[2:3])[0][0]
    assert (nearest.name, nearest.entry_id) == ("c", 3)
    assert nearest.distance == pytest.approx(0.0, abs=1e-6)


def test_numpy_and_faiss_agree_on_100k_entries():
    pytest.importorskip("faiss", reason="faiss-cpu is the optional extra [index]")
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((100_000, 128), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = rng.standard_normal((5, 128), dtype=np.float32)
    d_np, r_np = EmbeddingIndex(vectors, "squared_l2", "numpy").search(queries, k=5)
    d_fa, r_fa = EmbeddingIndex(vectors, "squared_l2", "faiss").search(queries, k=5)
    np.testing.assert_allclose(d_np, d_fa, rtol=1e-6, atol=1e-6)
    differ = r_np != r_fa
    # Only an exact tie (within float32 rounding) may be ordered differently.
    assert differ.sum() == 0 or np.allclose(d_np[differ], d_fa[differ], atol=1e-6)


# One interpreter imports the gallery (and with it TensorFlow) once; for each run named on stdin it
# forks a child that opens the gallery and enrols batches of 50 rows, printing "batch I" after each
# commit, until the test kills it; then it prints "ended SIGNAL" (what ended the child, -1: none).
SPAWNER = """
import os, sys
import numpy as np
from facenet_tf.gallery import Gallery

for line in sys.stdin:
    run = line.strip()
    pid = os.fork()
    if pid == 0:
        rng = np.random.default_rng()
        with Gallery.open(sys.argv[1], "m", 16) as gallery:
            for i in range(1_000_000):
                gallery.enroll([f"{run}_batch_{i}"] * 50, rng.standard_normal((50, 16)))
                print("batch", i, flush=True)
        os._exit(0)
    print("child", pid, flush=True)
    _, status = os.waitpid(pid, 0)
    print("ended", os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1, flush=True)
"""


def test_killed_enrolment_leaves_only_whole_batches(path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = ["run0", "run1", "run2"]  # where SIGKILL lands is luck: give it three chances
    spawner = subprocess.Popen([sys.executable, "-c", SPAWNER, path], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)

    def said():
        """The next stdout line of the spawner or its child, as words."""
        line = spawner.stdout.readline()
        assert line, spawner.stderr.read()
        return line.split()

    try:
        for run in runs:
            spawner.stdin.write(run + "\n")
            spawner.stdin.flush()
            pid, committed = None, []
            while pid is None or len(committed) < 3:
                word, value = said()
                if word == "child":
                    pid = int(value)
                else:
                    committed.append(value)
            assert committed == ["0", "1", "2"]
            os.kill(pid, signal.SIGKILL)
            while (line := said())[0] != "ended":
                pass  # batches the child committed before the signal landed
            assert line[1] == str(int(signal.SIGKILL))
        spawner.stdin.close()
        assert spawner.wait(timeout=60) == 0, spawner.stderr.read()
    finally:
        spawner.kill()
        spawner.wait()

    with Gallery.open(path, "m", 16, create=False) as gallery:
        counts = dict(gallery.list())
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert set(counts.values()) == {50}
    for run in runs:
        # Batches commit in order: what survives is batch_0..batch_n, all printed ones too.
        batches = sorted(int(name.rsplit("_", 1)[1]) for name in counts if name.startswith(run))
        assert len(batches) >= 3 and batches == list(range(len(batches)))
