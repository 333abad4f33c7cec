"""``facenet-tf serve`` (issue 33): the API through FastAPI's test client, and a real uvicorn server
on 127.0.0.1 under concurrent requests, SIGTERM and a restart.

The model is dlib's ResNet imported once per session (it names ORL people); the test-client
app loads it once per module, the real servers once per start.
"""

import concurrent.futures
import io
import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="facenet-tf serve needs the [serve] extra (fastapi, uvicorn, python-multipart)")
pytest.importorskip("multipart", reason="facenet-tf serve needs the [serve] extra (python-multipart)")
pytest.importorskip("uvicorn", reason="facenet-tf serve needs the [serve] extra (uvicorn)")

from fastapi.testclient import TestClient  # noqa: E402

from facenet_tf.cli import main  # noqa: E402
from facenet_tf.errors import FacenetError  # noqa: E402
from facenet_tf.service import ServeConfig, create_app  # noqa: E402
from serve_helpers import Server  # noqa: E402

ENROLLED = [f"s{i}" for i in range(1, 6)]
#: The test-client app's limits: small, so oversize uploads stay cheap to send.
MAX_UPLOAD_MB, MAX_PIXELS = 0.25, 200_000


def orl(orl_dir, person, i):
    return os.path.join(orl_dir, person, f"{i}.pgm")


def upload(path, field="image"):
    with open(path, "rb") as f:
        return (field, (os.path.basename(path), f.read(), "image/x-portable-graymap"))


def png(pixels):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def recognizer(dlib_dir):
    from facenet_tf.recognition import FaceRecognizer

    return FaceRecognizer.load(dlib_dir)


@pytest.fixture(scope="module")
def client(recognizer, dlib_dir, orl_dir, tmp_path_factory):
    """A test client of an app whose gallery is created by its first enrolment (s1..s5, photo 1;
    s1 also photo 2)."""
    gallery = str(tmp_path_factory.mktemp("serve") / "people.gallery")
    config = ServeConfig(model=dlib_dir, gallery=gallery, max_upload_mb=MAX_UPLOAD_MB, max_pixels=MAX_PIXELS)
    with TestClient(create_app(config, recognizer)) as client:
        before = client.post("/v1/identify", files=[upload(orl(orl_dir, "s1", 5))])
        assert before.status_code == 200, before.text
        assert [f["name"] for f in before.json()["faces"]] == [None] and not os.path.exists(gallery)
        assert before.json()["faces"][0]["distance"] is None
        for person in ENROLLED:
            photos = [upload(orl(orl_dir, person, i)) for i in ((1, 2) if person == "s1" else (1,))]
            answer = client.post("/v1/enroll", data={"name": person}, files=photos)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"name": person, "enrolled": len(photos)}
        client.gallery = gallery
        yield client


def people(client):
    answer = client.get("/v1/people")
    assert answer.status_code == 200
    return {p["name"]: p["images"] for p in answer.json()["people"]}


def test_health_page_script_and_openapi(client):
    assert client.get("/health").json() == {"status": "ok"}
    page = client.get("/")
    assert page.status_code == 200 and 'id="identify-file"' in page.text and "script-src" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "fetch(" in client.get("/app.js").text
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/v1/enroll", "/v1/identify", "/v1/verify", "/v1/people", "/v1/people/{name}"} <= set(paths)
    assert client.get("/docs").status_code == 200


def test_identify_names_every_face_with_its_box(client, orl_dir):
    assert {p: n for p, n in people(client).items() if p in ENROLLED} == {"s1": 2, "s2": 1, "s3": 1, "s4": 1, "s5": 1}
    for person in ENROLLED:
        answer = client.post("/v1/identify", files=[upload(orl(orl_dir, person, 6))])
        assert answer.status_code == 200, answer.text
        (face,) = answer.json()["faces"]
        assert face["name"] == person and 0 <= face["distance"] <= 0.6
        left, top, right, bottom = face["box"]  # a tight crop's box may reach past the photo's edges
        assert right - left > 30 and bottom - top > 30
        assert 0 < (left + right) / 2 < 92 and 0 < (top + bottom) / 2 < 112  # ORL photos are 92x112


def test_every_face_of_a_group_photo_is_named_and_a_group_photo_is_not_enrolled(client, orl_dir):
    from test_recognition import centre_inside, compose

    for person in ("s31", "s32"):
        files = [upload(orl(orl_dir, person, 1))]
        assert client.post("/v1/enroll", data={"name": person}, files=files).status_code == 200
    canvas, pasted = compose(orl_dir, [("s31", 3), ("s32", 3)])
    group = ("image", ("group.png", png(canvas), "image/png"))
    faces = client.post("/v1/identify", files=[group]).json()["faces"]
    assert sorted(f["name"] for f in faces) == ["s31", "s32"]
    for face in faces:
        assert centre_inside(face["box"], pasted[["s31", "s32"].index(face["name"])])
    refused = client.post("/v1/enroll", data={"name": "pair"}, files=[group])
    assert refused.status_code == 422 and "2 faces" in refused.json()["error"]
    assert "pair" not in people(client)
    for person in ("s31", "s32"):
        assert client.delete(f"/v1/people/{person}").status_code == 200


def test_identify_many_equals_identify_one_by_one(recognizer, client, orl_dir):
    from facenet_tf.data.reader import read_rgb
    from facenet_tf.gallery.service import open_gallery

    photos = [read_rgb(orl(orl_dir, person, 8)) for person in ENROLLED] + [np.full((90, 90, 3), 0, np.uint8)]
    with open_gallery(client.gallery, recognizer) as gallery:
        together = recognizer.identify_many(photos, gallery, 0.6)
        alone = [recognizer.identify(photo, gallery, 0.6) for photo in photos]
    assert [len(m) for m in together] == [len(m) for m in alone] == [1] * len(ENROLLED) + [0]
    for a, b in zip(together, alone):
        assert [(m.name, m.face.box) for m in a] == [(m.name, m.face.box) for m in b]
        np.testing.assert_allclose([m.distance for m in a], [m.distance for m in b], atol=1e-5)


def test_micro_batcher_gathers_concurrent_jobs_and_keeps_errors_apart():
    import asyncio

    from facenet_tf.service.batcher import MicroBatcher

    sizes = []

    def square(xs):
        sizes.append(len(xs))
        return [FacenetError(f"bad {x}") if x < 0 else x * x for x in xs]

    async def many(batcher):
        return await asyncio.gather(*(batcher.submit("square", x) for x in [1, 2, -3, 4, 5, 6]),
                                    return_exceptions=True)

    batcher = MicroBatcher({"square": square}, max_batch=4, wait_s=0.05)
    batcher.start()
    try:
        answers = asyncio.run(many(batcher))
    finally:
        batcher.stop()
    assert answers[:2] == [1, 4] and answers[3:] == [16, 25, 36]
    assert isinstance(answers[2], FacenetError) and str(answers[2]) == "bad -3"
    assert sizes == [4, 2] and (batcher.batches, batcher.jobs) == (2, 6)


def test_verify_compares_two_photos(client, orl_dir):
    same = client.post("/v1/verify", files=[upload(orl(orl_dir, "s3", 2), "image_a"),
                                            upload(orl(orl_dir, "s3", 7), "image_b")])
    other = client.post("/v1/verify", files=[upload(orl(orl_dir, "s3", 2), "image_a"),
                                             upload(orl(orl_dir, "s4", 2), "image_b")])
    assert same.status_code == other.status_code == 200
    assert same.json()["same"] is True and other.json()["same"] is False
    assert set(same.json()) == {"same", "distance"} and same.json()["distance"] < other.json()["distance"]


def test_remove_a_person(client, orl_dir):
    assert client.post("/v1/enroll", data={"name": "s9 / visitor"},
                       files=[upload(orl(orl_dir, "s9", 1))]).status_code == 200
    assert people(client)["s9 / visitor"] == 1
    answer = client.delete("/v1/people/s9 %2F visitor")
    assert answer.status_code == 200 and answer.json() == {"name": "s9 / visitor", "removed": 1}
    gone = client.delete("/v1/people/s9 %2F visitor")
    assert gone.status_code == 404 and "s9 / visitor" in gone.json()["error"]
    assert "s9 / visitor" not in people(client)


def _bad_requests(orl_dir):
    """``(what, method, path, form fields, files, expected status)`` of every bad input the issue names."""
    good = upload(orl(orl_dir, "s2", 3))
    photo = good[1][1]
    big = png(np.full((500, 500, 3), 128))  # 250,000 pixels > MAX_PIXELS, yet a small file
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3))  # ~480 kB > MAX_UPLOAD_MB
    return [
        ("empty upload", "/v1/identify", {}, [("image", ("a.png", b"", "image/png"))], 400),
        ("not an image", "/v1/identify", {}, [("image", ("a.jpg", b"<html>hello</html>", "image/jpeg"))], 400),
        ("truncated", "/v1/identify", {}, [("image", ("a.pgm", photo[: len(photo) // 2], "image/x-pgm"))], 400),
        ("beyond the pixel limit", "/v1/identify", {}, [("image", ("big.png", big, "image/png"))], 413),
        ("beyond --max-upload-mb", "/v1/identify", {}, [("image", ("n.png", png(noise), "image/png"))], 413),
        ("no image field", "/v1/identify", {}, [("photo", good[1])], 422),
        ("no image_b", "/v1/verify", {}, [upload(orl(orl_dir, "s2", 3), "image_a")], 422),
        ("no name", "/v1/enroll", {}, [good], 422),
        ("no image to enrol", "/v1/enroll", {"name": "x"}, [], 422),
        ("name with a newline", "/v1/enroll", {"name": "eve\nmallory"}, [good], 400),
        ("blank name", "/v1/enroll", {"name": "   "}, [good], 400),
        ("one bad photo among good ones", "/v1/enroll", {"name": "s2"}, [good, ("image", ("b.png", b"xx", "image/png"))],
         400),
        ("text instead of a file", "/v1/identify", {"image": "not a file"}, [], 422),
    ]


def test_bad_inputs_are_4xx_json_and_change_nothing(client, orl_dir):
    before = people(client)
    for what, path, data, files, status in _bad_requests(orl_dir):
        answer = client.post(path, data=data, files=files or None)
        assert answer.status_code == status, (what, answer.status_code, answer.text)
        body = answer.json()
        assert set(body) == {"error"} and body["error"] and "\n" not in body["error"], (what, body)
    streamed = client.post("/v1/identify", content=(b"x" * 65536 for _ in range(8)),  # no Content-Length
                           headers={"content-type": "multipart/form-data; boundary=zz"})
    assert streamed.status_code == 413 and "--max-upload-mb" in streamed.json()["error"]
    not_multipart = client.post("/v1/identify", content=b"just bytes", headers={"content-type": "text/plain"})
    assert not_multipart.status_code == 422 and set(not_multipart.json()) == {"error"}
    assert client.get("/no/such/route").status_code == 404
    assert people(client) == before  # nothing half-written, and the service still answers
    assert client.post("/v1/identify", files=[upload(orl(orl_dir, "s2", 4))]).json()["faces"][0]["name"] == "s2"


def test_photo_without_a_face_is_refused(client):
    flat = png(np.full((120, 100, 3), 200))
    enrol = client.post("/v1/enroll", data={"name": "wall"}, files=[("image", ("wall.png", flat, "image/png"))])
    assert enrol.status_code == 422 and "no face" in enrol.json()["error"]
    assert "wall" not in people(client)
    identify = client.post("/v1/identify", files=[("image", ("wall.png", flat, "image/png"))])
    assert identify.status_code == 200 and identify.json() == {"faces": []}
    verify = client.post("/v1/verify", files=[("image_a", ("wall.png", flat, "image/png")),
                                              ("image_b", ("wall.png", flat, "image/png"))])
    assert verify.status_code == 400 and "no face" in verify.json()["error"]


def test_token_is_required_on_v1_only(recognizer, dlib_dir, tmp_path):
    config = ServeConfig(model=dlib_dir, gallery=str(tmp_path / "g.gallery"), token="s3cret-token",
                         host="0.0.0.0")
    with TestClient(create_app(config, recognizer)) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"},
                        {"Authorization": "Basic s3cret-token"}):
            answer = client.get("/v1/people", headers=headers)
            assert answer.status_code == 401 and set(answer.json()) == {"error"}
            assert answer.headers["www-authenticate"] == "Bearer"
        assert client.post("/v1/identify").status_code == 401  # the token before the body
        assert client.get("/v1/people", headers={"Authorization": "Bearer s3cret-token"}).json() == {"people": []}
        assert client.get("/health").status_code == 200 and client.get("/").status_code == 200


def test_cors_is_off_unless_asked(recognizer, dlib_dir, tmp_path, client):
    preflight = {"Origin": "https://door.example", "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in client.options("/v1/identify", headers=preflight).headers
    config = ServeConfig(model=dlib_dir, gallery=str(tmp_path / "g.gallery"),
                         cors_origin=("https://door.example",))
    with TestClient(create_app(config, recognizer)) as cors:
        answer = cors.options("/v1/identify", headers=preflight)
        assert answer.headers["access-control-allow-origin"] == "https://door.example"


def test_start_up_refusals_are_one_line(capsys, tmp_path, recognizer, dlib_dir):
    gallery = str(tmp_path / "g.gallery")
    assert main(["serve", "--model", dlib_dir, "--gallery", gallery, "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--token" in err and "0.0.0.0" in err
    for host in ("127.0.0.1", "::1", "localhost", "127.3.2.1"):
        ServeConfig(model="m", gallery=gallery, host=host).validate()
    for host in ("192.168.1.20", "::", "example.org"):
        with pytest.raises(FacenetError, match="--token"):
            ServeConfig(model="m", gallery=gallery, host=host).validate()
    ServeConfig(model="m", gallery=gallery, host="0.0.0.0", token="t").validate()
    from facenet_tf.cli import build_parser
    from facenet_tf.cli.serve import config_from_args

    args = build_parser().parse_args(["serve", "--gallery", gallery, "--host", "10.0.0.2"])
    assert config_from_args(args, {"FACENET_TF_TOKEN": "from-env"}).token == "from-env"
    for bad in (dict(port=0), dict(max_upload_mb=0.0), dict(token="two words"), dict(max_batch=0)):
        with pytest.raises(FacenetError):
            ServeConfig(model="m", gallery=gallery, **bad).validate()
    not_a_gallery = tmp_path / "notes.txt"
    not_a_gallery.write_text("my notes")
    with pytest.raises(FacenetError, match="not a facenet_tf gallery"):
        create_app(ServeConfig(model=dlib_dir, gallery=str(not_a_gallery)), recognizer)
    assert not_a_gallery.read_text() == "my notes"


# ---- a real uvicorn server in a subprocess -------------------------------------------------------------


@pytest.fixture(scope="module")
def server_files(dlib_dir, tmp_path_factory):
    return dlib_dir, str(tmp_path_factory.mktemp("served") / "people.gallery")


def test_real_server_concurrent_requests_sigterm_and_restart(server_files, orl_dir, tmp_path):
    import httpx

    model, gallery = server_files
    server = Server(model, gallery, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=120) as http:
            for person in ENROLLED:
                files = [upload(orl(orl_dir, person, 1))]
                assert http.post("/v1/enroll", data={"name": person}, files=files).status_code == 200

            # 16 clients at once: 12 identify known people while 4 enrol new ones.
            def identify(k):
                person = ENROLLED[k % len(ENROLLED)]
                answer = http.post("/v1/identify", files=[upload(orl(orl_dir, person, 2 + k % 8))])
                return answer.status_code, [f["name"] for f in answer.json()["faces"]], person

            def enrol(k):
                person = f"s{20 + k}"
                answer = http.post("/v1/enroll", data={"name": person},
                                   files=[upload(orl(orl_dir, person, i)) for i in (1, 2)])
                return answer.status_code, answer.json(), person

            with concurrent.futures.ThreadPoolExecutor(16) as pool:
                found = list(pool.map(identify, range(12)))
                enrolled = list(pool.map(enrol, range(4)))
            assert all(status == 200 for status, _, _ in found + enrolled), found + enrolled
            correct = sum(names == [person] for _, names, person in found)
            assert correct >= 11, found  # dlib's ResNet names ORL people: at most one slip in 12
            listing = {p["name"]: p["images"] for p in http.get("/v1/people").json()["people"]}
            assert listing == {**{p: 1 for p in ENROLLED}, **{f"s{20 + k}": 2 for k in range(4)}}

            # SIGTERM while requests are in flight: they are answered, the process exits 0.
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                pending = [pool.submit(identify, k) for k in range(8)]
                time.sleep(0.2)
                start = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                answered = [f.result() for f in pending]
            assert server.process.wait(timeout=30) == 0, server.output()[-2000:]
            assert time.monotonic() - start < 20
            assert all(status == 200 for status, _, _ in answered), answered
    finally:
        server.stop()

    # A restart serves the same gallery.
    again = Server(model, gallery, tmp_path / "server2.log")
    try:
        with httpx.Client(base_url=again.url, timeout=120) as http:
            assert {p["name"]: p["images"] for p in http.get("/v1/people").json()["people"]} == listing
            answer = http.post("/v1/identify", files=[upload(orl(orl_dir, "s21", 5))]).json()
            assert [f["name"] for f in answer["faces"]] == ["s21"]
    finally:
        again.stop()
