"""Video: frames sampled with PyAV, the timeline of who appears when, and the annotated output."""

import json
import os

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.video.timeline import Sighting, build_timeline, iou

av = pytest.importorskip("av", reason="video needs the [video] extra (PyAV)")


def write_video(path, frames, fps=10):
    """Encode uint8 RGB frames to an H.264 MP4 with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


@pytest.fixture(scope="module")
def ramp_video(tmp_path_factory):
    """3 s at 10 fps; frame k is grey level 8k (so a sampled frame tells its index)."""
    path = tmp_path_factory.mktemp("video") / "ramp.mp4"
    write_video(path, [np.full((48, 64, 3), 8 * k, np.uint8) for k in range(30)])
    return str(path)


def test_frames_are_sampled_at_the_asked_rate(ramp_video):
    from facenet_tf.video.source import sample_frames, video_duration

    sampled = list(sample_frames(ramp_video, fps=2))
    assert [round(t, 2) for t, _ in sampled] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    levels = [int(round(frame.mean() / 8)) for _, frame in sampled]
    assert levels == [0, 5, 10, 15, 20, 25]
    assert sampled[0][1].shape == (48, 64, 3) and sampled[0][1].dtype == np.uint8
    assert len(list(sample_frames(ramp_video, fps=100))) == 30  # slower than asked: every frame
    assert video_duration(ramp_video) == pytest.approx(3.0, abs=0.15)


def test_bad_or_unsupported_files_are_one_line(tmp_path, ramp_video):
    from facenet_tf.video.source import sample_frames

    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(open(ramp_video, "rb").read()[:300])
    for bad in (str(text), str(tmp_path / "missing.mp4"), str(truncated)):
        with pytest.raises(FacenetError) as info:
            list(sample_frames(bad))
        assert "\n" not in str(info.value) and bad in str(info.value)
    with pytest.raises(FacenetError, match="--fps"):
        list(sample_frames(ramp_video, fps=0))


def test_annotated_video_is_written_whole_and_never_over_a_file(tmp_path, ramp_video):
    from facenet_tf.video.source import AnnotatedVideo, sample_frames

    out = tmp_path / "out.mp4"
    writer = AnnotatedVideo(str(out), fps=2)
    for t, frame in sample_frames(ramp_video, fps=2):
        writer.write(frame, [((5, 5, 30, 30), f"someone {t:.1f}")])
    writer.close()
    assert len(list(sample_frames(str(out), fps=100))) == 6
    assert os.listdir(tmp_path) == ["out.mp4"]  # no temporary file left
    with pytest.raises(FacenetError, match="never overwritten"):
        AnnotatedVideo(str(out), fps=2)


def test_timeline_joins_sightings_within_the_gap():
    box, moved, elsewhere = (10, 10, 50, 50), (14, 12, 54, 52), (200, 10, 240, 50)
    sightings = [Sighting(0.0, "ann", 0.3, box), Sighting(0.0, None, 0.9, elsewhere),
                 Sighting(0.5, "ann", 0.25, moved), Sighting(0.5, None, 0.8, elsewhere),
                 Sighting(1.0, None, 0.85, box),  # an unknown face where ann was: a new appearance
                 Sighting(3.0, "ann", 0.35, box)]  # back after 2.5 s: a new appearance
    timeline = build_timeline(sightings, gap=1.0)
    got = [(a.name, a.start, a.end, a.frames) for a in timeline]
    assert got == [("ann", 0.0, 0.5, 2), (None, 0.0, 0.5, 2), (None, 1.0, 1.0, 1), ("ann", 3.0, 3.0, 1)]
    assert timeline[0].best_distance == 0.25 and timeline[0].last_box == moved
    assert timeline[0].to_json_dict()["first_box"] == [10, 10, 50, 50]
    assert build_timeline([], gap=1.0) == []
    exact = build_timeline([Sighting(0.0, "bo", 0.2, box), Sighting(0.5, "bo", 0.0, box), Sighting(1.0, "bo", None, box)],
                           gap=1.0)
    assert exact[0].best_distance == 0.0 and exact[0].frames == 3


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


# --------------------------------------------------------------------------- identify --video, end to end

#: (person, image, first second, last second shown, slot): ORL faces on the video's canvas.
CAST = [("s31", 3, 0.0, 1.9, 0), ("s32", 3, 1.0, 3.9, 1), ("s40", 1, 2.5, 3.9, 2)]
GAP = 48


@pytest.fixture(scope="module")
def orl_video(orl_dir, tmp_path_factory):
    """4 s at 10 fps: s31 on the left for 0–1.9 s, s32 in the middle for 1–3.9 s, the stranger s40 on
    the right for 2.5–3.9 s (a grey canvas between)."""
    from facenet_tf.data.reader import read_rgb

    faces = {p: read_rgb(os.path.join(orl_dir, p, f"{i}.pgm")) for p, i, *_ in CAST}
    frames = []
    for k in range(40):
        t = k / 10
        canvas = np.full((112 + 2 * GAP, GAP + 3 * (92 + GAP), 3), 128, np.uint8)
        for person, _, start, end, slot in CAST:
            if start <= t <= end + 1e-9:
                left = GAP + slot * (92 + GAP)
                canvas[GAP:GAP + 112, left:left + 92] = faces[person]
        frames.append(canvas)
    path = tmp_path_factory.mktemp("orl_video") / "visit.mp4"
    write_video(path, frames)
    return str(path)


@pytest.fixture(scope="module")
def video_gallery(dlib_dir, orl_dir, tmp_path_factory):
    from facenet_tf.cli import main

    path = str(tmp_path_factory.mktemp("video_gallery") / "people.gallery")
    for person in ("s31", "s32"):
        images = [os.path.join(orl_dir, person, f"{i}.pgm") for i in (1, 2)]
        assert main(["enroll", "--model", dlib_dir, "--gallery", path, "--name", person, "--quiet", *images]) == 0
    return path


def test_identify_video_writes_the_timeline_as_json_lines(dlib_dir, video_gallery, orl_video, tmp_path, capsys):
    from facenet_tf.cli import main

    annotated = str(tmp_path / "annotated.mp4")
    assert main(["identify", "--model", dlib_dir, "--gallery", video_gallery, "--video", orl_video, "--fps", "2",
                 "--json", "--annotate", annotated]) == 0
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    got = [(a["name"], a["start"], a["end"], a["frames"]) for a in lines]
    assert got == [("s31", 0.0, 1.5, 4), ("s32", 1.0, 3.5, 6), (None, 2.5, 3.5, 3)]
    left = GAP + 2 * (92 + GAP)
    assert left - 20 < lines[2]["first_box"][0] < left + 92  # the stranger on the right
    assert "frames/s" in out.err and "(model)" in out.err
    from facenet_tf.video.source import sample_frames

    assert len(list(sample_frames(annotated, fps=100))) == 8  # the sampled frames, annotated


def test_identify_video_refuses_bad_files_in_one_line(dlib_dir, video_gallery, orl_video, tmp_path, capsys):
    from facenet_tf.cli import main

    bad = tmp_path / "clip.mp4"
    bad.write_text("not a video")
    for argv in (["--video", str(bad)], ["--video", str(tmp_path / "missing.mp4")],
                 ["--video", orl_video, os.path.join(tmp_path, "x.png")], ["--video", orl_video, "--fps", "0"],
                 ["--video", orl_video, "--annotate", orl_video]):
        assert main(["identify", "--model", dlib_dir, "--gallery", video_gallery, *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
