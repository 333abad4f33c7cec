"""Folders detected and aligned ahead of their use, in a thread or in worker processes
(faces/aligner.py ``chunked``): the same faces, in order, whatever the number of workers; errors
reach the caller; a broken pool falls back to this process."""

import multiprocessing
import os

import numpy as np
import pytest

from facenet_tf.data.reader import BadImage
from facenet_tf.errors import FacenetError
from facenet_tf.faces.aligner import (AlignConfig, Alignment, FaceAligner, align_files, align_images, aligned_chunks,
                                      chunked, parallel_workers)

HOG = AlignConfig(size=150, detector="dlib_hog", method="dlib_landmarks", on_failure="resize")


@pytest.fixture(scope="module")
def orl_paths(orl_dir):
    return [os.path.join(orl_dir, f"s{p}", f"{i}.pgm") for p in (3, 14, 27) for i in (1, 4, 8)]


@pytest.fixture(scope="module")
def hog_aligner():
    pytest.importorskip("face_recognition_models", reason="dlib's shape predictor file is not installed")
    return FaceAligner(HOG)


def test_processes_give_the_faces_of_one_process_in_order(hog_aligner, orl_paths):
    expected, expected_counts = align_files(hog_aligner, orl_paths, (150, 150))
    for workers, pieces in ((1, 5), (2, 9)):  # processes: chunks shrink to give each worker 8 or more
        chunks = list(aligned_chunks(hog_aligner, orl_paths, (150, 150), chunk=2, workers=workers))
        assert len(chunks) == pieces
        np.testing.assert_array_equal(np.concatenate([faces for faces, _ in chunks]), expected)
        assert sum(c.aligned for _, c in chunks) == expected_counts.aligned == len(orl_paths)


def test_workers_auto_is_one_per_core_only_for_a_detector_holding_the_gil(hog_aligner):
    pytest.importorskip("mtcnn", reason="the optional mtcnn package is not installed")
    assert parallel_workers(FaceAligner(AlignConfig()), 0) == 1  # MTCNN: TensorFlow uses the cores itself
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert parallel_workers(hog_aligner, 0) == max(1, min(cores, 8))
    assert parallel_workers(hog_aligner, 3) == 3


def test_bad_files_are_reported_in_place(hog_aligner, orl_paths, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    results = align_images(hog_aligner, [orl_paths[0], str(bad), orl_paths[1]])
    assert isinstance(results[0], Alignment) and isinstance(results[2], Alignment)
    assert isinstance(results[1], BadImage) and str(bad) in str(results[1])
    with pytest.raises(BadImage):
        align_files(hog_aligner, [orl_paths[0], str(bad)], (150, 150))


def test_an_error_in_a_worker_reaches_the_caller(orl_paths, tmp_path):
    pytest.importorskip("face_recognition_models", reason="dlib's shape predictor file is not installed")
    skip = FaceAligner(AlignConfig(size=150, detector="dlib_hog", method="dlib_landmarks", on_failure="skip"))
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.fromarray(np.full((112, 92, 3), 128, np.uint8)).save(blank)
    paths = orl_paths[:4] + [str(blank)]
    with pytest.raises(FacenetError, match=r"no face found in .*blank\.png"):
        list(aligned_chunks(skip, paths, (150, 150), chunk=2, workers=2))


def _dies_in_a_worker(aligner, paths):
    """A task that kills its worker process (not the parent): the pool breaks."""
    if multiprocessing.parent_process() is not None:
        os._exit(3)
    return [len(paths)]


def test_a_broken_pool_falls_back_to_this_process(hog_aligner, orl_paths, caplog):
    results = list(chunked(_dies_in_a_worker, hog_aligner, orl_paths, 2, 2))
    assert results == [[1]] * len(orl_paths)  # every file once, in this process
    assert "aligning the remaining images in this process" in caplog.text


def _environment_of_a_worker(aligner, paths):
    return [(multiprocessing.parent_process() is not None, os.environ.get("OPENBLAS_NUM_THREADS"))]


def test_workers_run_blas_on_one_thread(hog_aligner, orl_paths, monkeypatch):
    """Two workers on the cores need no BLAS pool each (the HOG detector's matrix products)."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    results = list(chunked(_environment_of_a_worker, hog_aligner, orl_paths, 2, 2))
    assert len(results) == len(orl_paths) and all(r == [(True, "1")] for r in results)
    assert os.environ["OPENBLAS_NUM_THREADS"] == "4"  # this process's environment as it was
