"""Grouping faces by person: :func:`facenet_tf.cluster.cluster_embeddings` on generated embeddings."""

import json
import os

import numpy as np
import pytest

from facenet_tf.cluster import METHODS, cluster_embeddings
from facenet_tf.errors import FacenetError

import composites  # tests/ is on sys.path

pytest.importorskip("sklearn", reason="clustering needs the [cluster] extra (scikit-learn)")


def people(sizes, dim=16, spread=0.05, seed=0):
    """Unit embeddings of people with ``sizes`` faces each, shuffled → ``(x, truth)``."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    centres = rng.normal(size=(len(sizes), dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[truth] + spread * rng.normal(size=(truth.size, dim))
    order = rng.permutation(truth.size)
    return x[order].astype(np.float32), truth[order]


def same_partition(a, b):
    """The two labelings group the faces alike (ids may differ)."""
    pairs_a = a[:, None] == a[None, :]
    pairs_b = b[:, None] == b[None, :]
    return np.array_equal(pairs_a, pairs_b)


@pytest.fixture(scope="module")
def crowd():
    return people([9, 7, 7, 5, 3, 2, 1, 1])


@pytest.mark.parametrize("method", ["average", "complete"])
def test_separate_people_become_one_cluster_each(crowd, method):
    x, truth = crowd
    labels = cluster_embeddings(x, 0.6, method, "l2")
    grouped = labels >= 0
    assert same_partition(labels[grouped], truth[grouped])
    assert (~grouped).sum() == 2  # the two people with one face: left alone
    sizes = np.bincount(labels[grouped])
    assert list(sizes) == [9, 7, 7, 5, 3, 2]  # numbered by decreasing size
    first = [np.flatnonzero(labels == k)[0] for k in (1, 2)]
    assert first[0] < first[1]  # equal sizes: the earlier face first


def test_min_size_and_empty_input(crowd):
    x, truth = crowd
    assert (cluster_embeddings(x, 0.6, min_size=4) >= 0).sum() == 9 + 7 + 7 + 5
    assert (cluster_embeddings(x, 0.6, min_size=1) >= 0).all()
    assert cluster_embeddings(np.zeros((0, 16)), 0.6).shape == (0,)


def test_k_nearest_graph_path_matches_the_full_matrix(crowd):
    x, _ = crowd
    for method in METHODS:
        dense = cluster_embeddings(x, 0.6, method, "l2")
        sparse = cluster_embeddings(x, 0.6, method, "l2", dense_limit=8, neighbours=12)
        assert same_partition(dense, sparse), method


def test_average_linkage_does_not_chain_two_people_through_a_bridge():
    """A face halfway between two people links them in the threshold graph (one component);
    average linkage still keeps the two people apart, as single linkage (DBSCAN) does not."""
    a = np.zeros((6, 2))
    a[:, 1] = np.linspace(-0.05, 0.05, 6)
    b = a + [1.0, 0]
    bridge = np.array([[0.5, 0.0]])
    x = np.concatenate([a, b, bridge]).astype(np.float32)
    labels = cluster_embeddings(x, 0.55, "average", "l2")
    assert labels[0] != labels[6] and len(set(labels[:6])) == 1 and len(set(labels[6:12])) == 1
    assert len(set(cluster_embeddings(x, 0.55, "dbscan", "l2"))) == 1


def test_distances_and_duplicates():
    x, truth = people([4, 4, 4], spread=0.02, seed=2)
    x = np.concatenate([x, x[:1]])  # an exact duplicate: distance 0 is still "within"
    truth = np.append(truth, truth[0])
    for distance, threshold in (("cosine", 0.2), ("squared_l2", 0.3), ("l2", 0.5)):
        assert same_partition(cluster_embeddings(x, threshold, distance=distance), truth), distance


def test_bad_arguments_are_one_line_errors(crowd):
    x, _ = crowd
    for kwargs in ({"method": "kmeans"}, {"threshold": 0}, {"threshold": float("nan")}, {"distance": "manhattan"}):
        args = {"threshold": 0.6, **kwargs}
        with pytest.raises(FacenetError):
            cluster_embeddings(x, **args)
    with pytest.raises(FacenetError, match="shape"):
        cluster_embeddings(x[0], 0.6)


# --------------------------------------------------------------------------- photos: facenet-tf cluster

#: Composite photos: ORL (person, image) per face, left to right.
PHOTOS = [[(1, 1), (2, 1), (3, 1)], [(2, 2), (3, 2), (4, 2)], [(3, 3), (4, 3), (1, 3)], [(4, 4), (1, 4), (2, 4)],
          [(1, 5), (5, 5)], [(5, 6), (2, 6), (3, 6)]]


def compose(orl_dir, faces):
    """:func:`composites.compose` of ORL ``(person number, image)`` pairs."""
    return composites.compose(orl_dir, [(f"s{person}", image) for person, image in faces])


@pytest.fixture(scope="module")
def collection(orl_dir, tmp_path_factory):
    """``(folder, {abs path: [(person, pasted box)]})``: composites in a folder and a sub-folder, an
    unreadable file and a text file beside them."""
    from PIL import Image

    root = tmp_path_factory.mktemp("collection")
    os.makedirs(root / "album" / "trip")
    truth = {}
    for n, faces in enumerate(PHOTOS):
        canvas, boxes = compose(orl_dir, faces)
        path = root / "album" / ("trip" if n % 2 else "") / f"photo{n}.png"
        Image.fromarray(canvas).save(path)
        truth[str(path)] = [(person, box) for (person, _), box in zip(faces, boxes)]
    (root / "album" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (root / "album" / "notes.txt").write_text("not a photo")
    return str(root / "album"), truth


def person_of(truth, image, box):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hits = [p for p, (l, t, r, b) in truth[image] if l <= cx <= r and t <= cy <= b]
    return hits[0] if len(hits) == 1 else None


@pytest.fixture(scope="module")
def clustered(dlib_dir, collection, tmp_path_factory):
    from facenet_tf.cli import main

    out = str(tmp_path_factory.mktemp("clusters") / "out")
    before = {p: os.stat(p).st_mtime_ns for p in collection[1]}
    assert main(["cluster", "--model", dlib_dir, "--output", out, "--link", "--quiet", collection[0]]) == 0
    assert before == {p: os.stat(p).st_mtime_ns for p in collection[1]}  # the photos untouched
    with open(os.path.join(out, "clusters.json")) as f:
        return out, json.load(f)


def test_cluster_groups_every_face_by_person(clustered, collection):
    out, document = clustered
    folder, truth = collection
    assert set(document) == {"clusters", "unclustered", "threshold"}
    assert document["threshold"] == pytest.approx(0.6)  # the imported model's own
    found = [(c["id"], f) for c in document["clusters"] for f in c["faces"]] + [(-1, f) for f in document["unclustered"]]
    assert len(found) == sum(len(v) for v in truth.values())  # every pasted face, nothing else
    persons = {}
    for cluster_id, face in found:
        assert set(face) == {"image", "box"} and len(face["box"]) == 4
        person = person_of(truth, face["image"], face["box"])
        assert person is not None
        persons.setdefault(person, set()).add(cluster_id)
    assert all(len(ids) == 1 and -1 not in ids for ids in persons.values())  # one cluster per person
    assert len(document["clusters"]) == 5 and [c["id"] for c in document["clusters"]] == list(range(5))


def test_cluster_writes_sheets_and_links_and_nothing_else(clustered, collection):
    from PIL import Image

    out, document = clustered
    assert sorted(os.listdir(out)) == [".facenet_tf-owner.json", "clusters.json", "links", "sheets"]
    sheets = sorted(os.listdir(os.path.join(out, "sheets")))
    assert sheets == [f"cluster_{k:04d}.png" for k in range(len(document["clusters"]))]
    assert Image.open(os.path.join(out, "sheets", sheets[0])).size[0] > 96
    for cluster in document["clusters"]:
        folder = os.path.join(out, "links", f"cluster_{cluster['id']:04d}")
        targets = sorted(os.readlink(os.path.join(folder, n)) for n in os.listdir(folder))
        assert targets == sorted({f["image"] for f in cluster["faces"]})


def test_cluster_refuses_an_output_inside_the_photos_or_a_users_folder(dlib_dir, collection, tmp_path, capsys):
    from facenet_tf.cli import main

    assert main(["cluster", "--model", dlib_dir, "--output", os.path.join(collection[0], "out"), collection[0]]) == 2
    assert "input folder" in capsys.readouterr().err
    (tmp_path / "mine.txt").write_text("mine")
    assert main(["cluster", "--model", dlib_dir, "--output", str(tmp_path), collection[0]]) == 2
    assert os.listdir(tmp_path) == ["mine.txt"]
    assert main(["cluster", "--model", dlib_dir, "--output", str(tmp_path / "o"), str(tmp_path / "nowhere")]) == 2
    assert "no such photo or folder" in capsys.readouterr().err


def chinese_whispers(vectors, threshold):
    """dlib's rule: dlib-bin's ``chinese_whispers_clustering`` (the reference)."""
    dlib = pytest.importorskip("dlib", reason="the reference is dlib-bin's Chinese whispers")
    return np.asarray(dlib.chinese_whispers_clustering([dlib.vector(v.tolist()) for v in vectors], threshold))


def test_our_clustering_is_at_least_as_good_as_dlibs_chinese_whispers(dlib_dir, orl_dir):
    """24 ORL people, 4 images each, embedded by the imported model: pairwise F1 of our default
    rule against dlib's Chinese whispers at the same threshold."""
    from sklearn.metrics.cluster import pair_confusion_matrix

    from facenet_tf.recognition import FaceRecognizer

    recognizer = FaceRecognizer.load(dlib_dir)
    paths = [os.path.join(orl_dir, f"s{p}", f"{i}.pgm") for p in range(1, 25) for i in (1, 4, 7, 10)]
    truth = np.repeat(np.arange(24), 4)
    vectors = recognizer.embed_files(paths)
    threshold = recognizer.threshold()

    def f1(labels):
        labels = np.where(labels < 0, np.arange(labels.size) + labels.max() + 2, labels)
        (_, fn), (fp, tp) = pair_confusion_matrix(truth, labels)
        return 2 * tp / (2 * tp + fp + fn)

    ours, reference = f1(cluster_embeddings(vectors, threshold)), f1(chinese_whispers(vectors, threshold))
    assert ours >= reference and ours > 0.85, (ours, reference)


def test_duplicates_stay_together_on_the_k_nearest_graph():
    x, truth = people([5, 5, 3], spread=0.02, seed=4)
    x = np.concatenate([x, x, x[:2]])  # every face twice, two thrice: distances of exactly 0
    truth = np.concatenate([truth, truth, truth[:2]])
    assert same_partition(cluster_embeddings(x, 0.5, dense_limit=4, neighbours=6), truth)
