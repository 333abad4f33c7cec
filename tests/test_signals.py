"""Issue 28: SIGTERM ends a command and all its worker processes within seconds, with nothing
half-written, and the temporary files of a killed command are removed by its next run."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-c", "import sys; from facenet_tf.cli import main; sys.exit(main(sys.argv[1:]))"]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
#: Seconds a command may take to end after SIGTERM (generous: the test machine is shared).
STOP_SECONDS = 30


def descendants(pid):
    """Pids of every live process below ``pid`` (children, their children, ...), from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_for(condition, seconds, proc=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")
@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["sigterm", "sigint"])
def test_a_signal_during_enroll_ends_its_workers_and_leaves_the_gallery_unchanged(small_model_dir, orl_dir, tmp_path,
                                                                                  sig, status):
    pytest.importorskip("dlib", reason="the HOG detector's worker processes need dlib (the [pretrained] extra)")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("enrolment aligns in worker processes only with 2 or more cores")
    from facenet_tf.cli import main

    gallery = str(tmp_path / "g.db")
    first = os.path.join(orl_dir, "s1", sorted(os.listdir(os.path.join(orl_dir, "s1")))[0])
    assert main(["enroll", "--model", small_model_dir, "--gallery", gallery, "--name", "ada", "--no-align", first]) == 0
    before, listing = sha(gallery), sorted(os.listdir(tmp_path))
    proc = subprocess.Popen([*CLI, "enroll", "--model", small_model_dir, "--gallery", gallery, "--from-dir", orl_dir,
                             "--align-method", "dlib_landmarks", "--detector", "dlib_hog", "--quiet"],
                            stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        workers = lambda: sum("spawn_main" in _cmdline(p) for p in descendants(proc.pid)) >= 2  # noqa: E731
        assert wait_for(workers, 120, proc), "no worker processes started: " + (proc.stderr.read() or "")[-500:]
        time.sleep(1.0)  # let the workers take tasks
        children = descendants(proc.pid)
        proc.send_signal(sig)
        proc.wait(STOP_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, proc.stderr.read()[-500:]
    assert wait_for(lambda: not any(alive(p) for p in children), 5), "worker processes outlived the command"
    # The gallery is as it was, and SQLite's -wal/-shm files are gone with the command.
    assert sha(gallery) == before and sorted(os.listdir(tmp_path)) == listing
    from facenet_tf.gallery.store import GalleryStore

    with GalleryStore.open(gallery) as store:
        assert store.names() == [("ada", 1)]


KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
from facenet_tf.gallery.store import GalleryStore

store = GalleryStore.open(sys.argv[2])
store.insert([("bea", np.ones(4, "<f4"), None)])  # committed: in the write-ahead log, not yet in the file
with store.transaction() as db:
    db.execute("INSERT INTO entries (name, embedding, source, enrolled_at) VALUES ('cy', zeroblob(16), NULL, 'x')")
    os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction, no handler, nothing closed
"""


@pytest.mark.parametrize("reader", ["read_meta", "open", "open_read_only"])
def test_a_gallery_whose_writer_was_killed_is_whole_and_alone_after_the_next_open(tmp_path, reader):
    """A writer killed (SIGKILL, or SIGTERM without the CLI's handler) leaves SQLite's -wal and -shm
    beside the gallery; the next open of any kind folds the committed enrolments into the file and
    removes them, and the transaction the kill interrupted is gone."""
    import sqlite3

    import numpy as np

    from facenet_tf.gallery import store as gallery_store

    path = str(tmp_path / "g.db")
    meta = {"model_fingerprint": "f", "embedding_dim": "4", "distance": "euclidean"}
    with gallery_store.GalleryStore.open(path, create_meta=meta) as first:
        first.insert([("ada", np.zeros(4, "<f4"), None)])
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, REPO, path], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert os.path.exists(path + "-wal"), "the killed writer left its write-ahead log"
    if reader == "read_meta":
        gallery_store.read_meta(path)
    else:
        gallery_store.GalleryStore.open(path, read_only=reader == "open_read_only").close()
    assert sorted(os.listdir(tmp_path)) == ["g.db"]
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # the file alone, as it is on disk
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("SELECT name FROM entries ORDER BY id").fetchall() == [("ada",), ("bea",)]
    finally:
        connection.close()
    assert sorted(os.listdir(tmp_path)) == ["g.db"]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read()
    except OSError:
        return ""


def _temporaries(parent, name):
    return sorted(n for n in os.listdir(parent) if n.startswith(f".{name}.tmp-"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_killed_export_leaves_no_temporary_folder_after_the_next_run(small_model_dir, tmp_path, sig):
    from facenet_tf.cli import main

    out = str(tmp_path / "export")
    argv = ["export", "--model", small_model_dir, "--output", out]
    proc = subprocess.Popen([*CLI, *argv], stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        started = lambda: any(os.path.exists(os.path.join(tmp_path, t, "saved_model.pb"))  # noqa: E731
                              for t in _temporaries(tmp_path, "export"))
        assert wait_for(started, 180, proc), "export wrote nothing aside: " + (proc.stderr.read() or "")[-500:]
        proc.send_signal(sig)
        proc.wait(STOP_SECONDS)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not os.path.exists(os.path.join(out, "saved_model.pb")), "killed before publishing: nothing published"
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM and not _temporaries(tmp_path, "export")
    else:
        assert _temporaries(tmp_path, "export"), "kill -9 leaves the temporary folder (the next run removes it)"
    mine = tmp_path / ".export.tmp-mine"  # the user's, named like one: no marker, never removed
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    assert main(argv) == 0
    assert _temporaries(tmp_path, "export") == [".export.tmp-mine"] and (mine / "keep.txt").read_text() == "mine"
    assert os.path.isfile(os.path.join(out, "saved_model.pb"))


def test_a_stopped_worker_pool_ends_its_running_workers_at_once():
    """prepare's (and align's) pool: a consumer that stops (Ctrl-C, SIGTERM, an error) ends the
    workers now, even mid-task, instead of waiting for their tasks."""
    import multiprocessing

    from facenet_tf.data.prepare import _ordered_map

    results = _ordered_map(time.sleep, [(0.01,), (60,), (60,), (60,)], 2)
    assert next(results) is None
    assert len(multiprocessing.active_children()) >= 2
    started = time.time()
    results.close()
    assert time.time() - started < STOP_SECONDS / 3
    assert wait_for(lambda: not multiprocessing.active_children(), 5), multiprocessing.active_children()


STOPPED_MID_RESULT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from facenet_tf.data.prepare import _ordered_map

results = _ordered_map(bytes, [(1,)] + [(64 << 20,)] * 3, 2)  # 64 MB results: still in the pipe when stopped
assert next(results) == b"\\0"
time.sleep(0.2)  # the next worker is sending its result
results.close()
print("stopped")
"""


def test_a_pool_stopped_while_a_worker_sends_its_result_lets_the_process_exit():
    """A worker ended mid-send leaves half a message in the result pipe; the process must still
    exit (the pool's manager thread would otherwise wait for the rest forever at exit)."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", STOPPED_MID_RESULT, repo], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "stopped" in proc.stdout, proc.stderr[-2000:]
