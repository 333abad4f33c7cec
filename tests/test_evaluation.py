"""Tests of facenet_tf.evaluation: hand-computed cases, closed forms and loop references."""

import json
import os

import numpy as np
import pytest

from facenet_tf.errors import FacenetError
from facenet_tf.evaluation import (
    Pair,
    all_pairs,
    auc,
    best_threshold,
    equal_error_rate,
    identification_metrics,
    lfw_pair_paths,
    read_lfw_pairs,
    roc_curve,
    split_enrolment,
    tar_at_far,
    verification_metrics,
)
from facenet_tf.evaluation.pairs import _unrank_pairs


# ----------------------------------------------------------------------------- metrics


def test_roc_hand_computed_four_pairs():
    # Sorted: 0.1 same, 0.2 diff, 0.3 same, 0.4 diff.
    d = [0.3, 0.1, 0.4, 0.2]
    same = [True, True, False, False]
    far, tar, thresholds = roc_curve(d, same)
    np.testing.assert_allclose(far, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tar, [0, 0.5, 0.5, 1, 1])
    np.testing.assert_allclose(thresholds[1:], [0.1, 0.2, 0.3, 0.4])
    assert thresholds[0] < 0.1
    assert auc(far, tar) == pytest.approx(0.75)  # 3 of 4 (same, diff) pairs ordered
    assert equal_error_rate(far, tar) == pytest.approx(0.5)
    assert tar_at_far(far, tar, 0.25, thresholds) == (0.5, 0.1)
    assert tar_at_far(far, tar, 0.5, thresholds) == (1.0, 0.3)
    assert tar_at_far(far, tar, 0.5) == (1.0, None)
    # Accuracy 3/4 after 0.1 and after 0.3; the first wins, midway to the next distance.
    assert best_threshold(d, same) == pytest.approx(0.15)


def test_perfectly_separable():
    d = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    same = np.array([1, 1, 1, 0, 0, 0])
    far, tar, thresholds = roc_curve(d, same)
    assert auc(far, tar) == 1.0
    assert equal_error_rate(far, tar) == 0.0
    assert tar_at_far(far, tar, 1e-3, thresholds) == (1.0, 0.3)
    assert best_threshold(d, same) == pytest.approx(0.5)
    result = verification_metrics(d, same, n_folds=3)
    assert result.accuracy == 1.0 and result.accuracy_std == 0.0
    assert result.auc == 1.0 and result.eer == 0.0
    assert result.val_at_far == {1e-3: 1.0, 1e-2: 1.0}
    assert result.threshold == pytest.approx(0.5)


def test_identical_distances_give_chance():
    far, tar, thresholds = roc_curve(np.full(6, 0.7), [1, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(far, [0, 1])
    np.testing.assert_array_equal(tar, [0, 1])
    assert auc(far, tar) == 0.5
    assert equal_error_rate(far, tar) == 0.5
    assert tar_at_far(far, tar, 1e-2) == (0.0, None)


def test_reversed_distances():
    far, tar, _ = roc_curve([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0])
    assert auc(far, tar) == 0.0
    assert equal_error_rate(far, tar) == 1.0


def _loop_roc(d, same, w):
    """Reference from the definition: one threshold at a time."""
    fars, tars = [0.0], [0.0]
    for t in np.unique(d):
        accepted = d <= t
        tars.append(w[accepted & same].sum() / w[same].sum())
        fars.append(w[accepted & ~same].sum() / w[~same].sum())
    return np.array(fars), np.array(tars)


def _loop_auc(d, same, w):
    """Probability a same pair is closer than a different pair, ties counting half."""
    total = 0.0
    for i in np.nonzero(same)[0]:
        for j in np.nonzero(~same)[0]:
            total += w[i] * w[j] * ((d[i] < d[j]) + 0.5 * (d[i] == d[j]))
    return total / (w[same].sum() * w[~same].sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_and_threshold_match_loop(seed):
    rng = np.random.default_rng(seed)
    same = rng.random(60) < 0.4
    # Rounded distances create ties; same pairs are closer on average.
    d = np.round(rng.normal(np.where(same, 1.0, 1.6), 0.4), 1)
    w = rng.uniform(0.2, 2.0, size=60)
    for weight in (None, w):
        ref_w = np.ones(60) if weight is None else weight
        far, tar, thresholds = roc_curve(d, same, weight)
        ref_far, ref_tar = _loop_roc(d, same, ref_w)
        np.testing.assert_allclose(far, ref_far, atol=1e-12)
        np.testing.assert_allclose(tar, ref_tar, atol=1e-12)
        assert auc(far, tar) == pytest.approx(_loop_auc(d, same, ref_w))

        threshold = best_threshold(d, same, weight)
        candidates = np.concatenate([[d.min() - 1], np.unique(d)])
        accuracy = [ref_w[(d <= t) == same].sum() / ref_w.sum() for t in candidates]
        assert ref_w[(d <= threshold) == same].sum() / ref_w.sum() == pytest.approx(max(accuracy))
        assert threshold not in d  # midway between distinct distances


def test_eer_interpolates_and_matches_definition():
    rng = np.random.default_rng(3)
    same = rng.random(200) < 0.5
    d = rng.normal(np.where(same, 1.0, 2.0), 0.7)
    far, tar, _ = roc_curve(d, same)
    eer = equal_error_rate(far, tar)
    # At the EER the curve crosses FAR = 1 - TAR: bracketing points straddle it.
    i = np.argmax(far + tar - 1 >= 0)
    assert far[i - 1] <= eer <= far[i]
    assert 1 - tar[i] - 1e-12 <= eer <= 1 - tar[i - 1] + 1e-12


def test_balanced_accuracy_on_skewed_set():
    # No signal: every pair at the same distance, 10 same and 90 different pairs.
    d = np.full(100, 1.0)
    same = np.arange(100) < 10
    unbalanced = verification_metrics(d, same, balanced=False)
    balanced = verification_metrics(d, same, balanced=True)
    # Accepting nothing is right 90% of the time, but only half right per class.
    assert unbalanced.accuracy == pytest.approx(0.9) and unbalanced.accuracy_std == pytest.approx(0.0)
    assert balanced.accuracy == pytest.approx(0.5) and balanced.accuracy_std == pytest.approx(0.0)


def test_balanced_threshold_differs_from_unbalanced():
    # Same pairs 0.2, 0.6; different pairs one at 0.4 and 97 at 1.0.
    d = np.array([0.2, 0.6, 0.4] + [1.0] * 97)
    same = np.array([True, True] + [False] * 98)
    # Unweighted: 99/100 after 0.2 or after 0.6, the first wins. Balanced: after 0.6.
    assert best_threshold(d, same) == pytest.approx(0.3)
    weight = np.where(same, 0.5 / 2, 0.5 / 98)
    assert best_threshold(d, same, weight) == pytest.approx(0.8)
    assert verification_metrics(d, same, n_folds=2, balanced=True).threshold == pytest.approx(0.8)
    assert verification_metrics(d, same, n_folds=2, balanced=False).threshold == pytest.approx(0.3)


@pytest.mark.parametrize("given_folds", [True, False])
def test_ten_fold_protocol_uses_held_out_threshold(given_folds):
    # 10 folds x (3 same + 3 different). Same pairs at 1.0, different at 3.0, but one
    # same pair of fold 0 lies at 2.5: on all pairs the best threshold is 2.75 and
    # accepts it; chosen without fold 0 it is 2.0 and rejects it.
    folds = np.repeat(np.arange(10), 6)
    same = np.tile([True, True, True, False, False, False], 10)
    d = np.where(same, 1.0, 3.0)
    d[0] = 2.5
    result = verification_metrics(d, same, folds=folds if given_folds else None, n_folds=10)
    fold_accuracy = np.array([(2 / 3 + 1) / 2] + [1.0] * 9)
    assert result.threshold == pytest.approx(2.75)
    assert result.accuracy == pytest.approx(fold_accuracy.mean())
    assert result.accuracy_std == pytest.approx(fold_accuracy.std())
    np.testing.assert_allclose(np.sort(result.fold_accuracies), np.sort(fold_accuracy))
    assert result.auc == 1.0
    assert (result.num_pairs, result.num_positive, result.num_negative) == (60, 30, 30)


def test_stratified_folds_depend_on_seed_only():
    rng = np.random.default_rng(0)
    same = rng.random(80) < 0.5
    d = rng.normal(np.where(same, 1.0, 1.5), 0.5)
    a = verification_metrics(d, same, seed=4)
    b = verification_metrics(d, same, seed=4)
    np.testing.assert_array_equal(a.fold_accuracies, b.fold_accuracies)


def test_to_json_dict_keys_and_types():
    rng = np.random.default_rng(1)
    same = rng.random(100) < 0.5
    d = rng.normal(np.where(same, 1.0, 2.0), 0.5)
    out = verification_metrics(d, same).to_json_dict()
    assert list(out) == [
        "accuracy", "accuracy_std", "auc", "eer", "val_at_far_1e-3", "val_at_far_1e-2",
        "threshold", "threshold_at_far_1e-3", "threshold_at_far_1e-2",
        "num_pairs", "num_positive_pairs", "num_negative_pairs",
    ]
    assert all(type(v) is float for k, v in out.items() if not k.startswith("num_"))
    assert all(type(v) is int for k, v in out.items() if k.startswith("num_"))
    assert json.loads(json.dumps(out, allow_nan=False)) == out


@pytest.mark.parametrize(
    "distances, issame, message",
    [
        ([0.1, 0.2], [True], "same length"),
        ([[0.1, 0.2]], [[True, False]], "1-D"),
        ([0.1, 0.2], [True, True], "both same- and different"),
        ([0.1, np.nan], [True, False], "finite"),
        ([0.1, 0.2], [2, 0], "bool or 0/1"),
    ],
)
def test_verification_input_errors(distances, issame, message):
    with pytest.raises(FacenetError, match=message):
        verification_metrics(distances, issame)


def test_fold_without_a_class_in_training_is_an_error():
    with pytest.raises(FacenetError, match="outside fold 1"):
        verification_metrics([0.1, 0.9, 0.8], [True, False, False], folds=[1, 0, 1])
    with pytest.raises(FacenetError, match="n_folds"):
        verification_metrics([0.1, 0.9], [True, False], n_folds=3)
    with pytest.raises(FacenetError, match="far_targets"):
        verification_metrics([0.1, 0.9], [True, False], n_folds=2, far_targets=(0.0,))


# ------------------------------------------------------------------------------- pairs


def _write_view2(path, lines_by_fold, header="2 2"):
    body = [line for fold in lines_by_fold for line in fold]
    path.write_text(header + "\n" + "\n".join(body) + "\n")


def test_read_lfw_pairs_view2(tmp_path):
    path = tmp_path / "pairs.txt"
    _write_view2(path, [
        ["Abel_Pacheco\t1\t4", "Akhmed_Zakayev 1 3", "Abdel_Madi_Shabneh 1 Dean_Barker 1", "Abdel 2 Beth 7"],
        ["Ann 1 2", "Bob 3 4", "Ann 1 Bob 2", "Cid 1 Dee 1"],
    ])
    pairs = read_lfw_pairs(path)
    assert len(pairs) == 8
    assert pairs[0] == Pair(("Abel_Pacheco", 1), ("Abel_Pacheco", 4), True, 0)
    assert pairs[2] == Pair(("Abdel_Madi_Shabneh", 1), ("Dean_Barker", 1), False, 0)
    assert [p.fold for p in pairs] == [0] * 4 + [1] * 4
    assert [p.issame for p in pairs] == [True, True, False, False] * 2


def test_read_lfw_pairs_plain(tmp_path):
    with_header = tmp_path / "dev.txt"
    with_header.write_text("3\nAnn 1 Bob 2\nAnn 1 2\n\nCid 1 Dee 1\n")
    without = tmp_path / "plain.txt"
    without.write_text("Ann 1 Bob 2\nAnn 1 2\n")
    pairs = read_lfw_pairs(with_header)
    assert [p.issame for p in pairs] == [False, True, False]
    assert all(p.fold is None for p in pairs)
    assert read_lfw_pairs(without) == pairs[:2]


@pytest.mark.parametrize(
    "text, message",
    [
        ("Ann 1 2\nAnn 1 Bob 2 3\n", "line 2: expected 'name i j'"),
        ("Ann 1 2\nAnn x 2\n", "line 2: image number"),
        ("1 2\nAnn 1 2\nAnn 1 Bob 2\nCid 1 2\n", "announces 1 folds x 2 x 2 = 4 pairs; found 3"),
        ("1 2\nAnn 1 2\nAnn 1 Bob 2\nCid 1 2\nCid 1 Dee 2\n", "line 3: fold 0 expects a same-person"),
        ("", "holds no pairs"),
    ],
)
def test_read_lfw_pairs_errors(tmp_path, text, message):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(FacenetError, match=message):
        read_lfw_pairs(path)


def test_pairs_file_is_strict_utf8_with_the_bom_ignored(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_bytes("\ufeffZoë 1 2\nAnn 1 Bob 2\n".encode("utf-8"))
    assert read_lfw_pairs(path)[0].path_a_key == ("Zoë", 1)  # not "\ufeffZoë"
    path.write_bytes("Ann 1 2\nZo\xeb 1 2\n".encode("latin-1"))
    with pytest.raises(FacenetError, match=r"pairs.txt.*, line 2: not UTF-8 text \(byte 0xeb\)"):
        read_lfw_pairs(path)


@pytest.mark.parametrize("line", ["Ann 1 1", "Ann 3 Ann 3", "Ann 03 Ann 3"])
def test_a_pair_naming_one_image_twice_is_refused(tmp_path, line):
    path = tmp_path / "pairs.txt"
    path.write_text(f"Bob 1 2\n{line}\n")
    with pytest.raises(FacenetError, match=r"line 2: the pair names the same image twice \(Ann"):
        read_lfw_pairs(path)


def test_a_repeated_pair_is_counted_once_with_a_warning(tmp_path, caplog):
    path = tmp_path / "pairs.txt"
    path.write_text("Ann 1 2\nAnn 1 Bob 2\nAnn 2 1\nBob 2 Ann 1\nCid 1 2\n")
    with caplog.at_level("WARNING", logger="facenet_tf"):
        pairs = read_lfw_pairs(path)
    assert [(p.path_a_key, p.path_b_key) for p in pairs] == [
        (("Ann", 1), ("Ann", 2)), (("Ann", 1), ("Bob", 2)), (("Cid", 1), ("Cid", 2))]
    assert "line 3 repeats the pair of line 1 (Ann 2 1)" in caplog.text
    assert "line 4 repeats the pair of line 2 (Bob 2 Ann 1)" in caplog.text


def test_fewer_pairs_than_folds_is_said_in_the_users_terms(tmp_path, synthetic_dir, capsys):
    from facenet_tf.cli import main

    people = sorted(os.listdir(synthetic_dir))[:2]
    root = tmp_path / "lfw"
    for name in people:
        (root / name).mkdir(parents=True)
        for i, image in enumerate(sorted(os.listdir(os.path.join(synthetic_dir, name)))[:2], 1):
            os.link(os.path.join(synthetic_dir, name, image), root / name / f"{name}_{i:04d}.png")
    pairs = tmp_path / "pairs.txt"
    pairs.write_text(f"{people[0]} 1 2\n{people[1]} 1 2\n{people[0]} 1 {people[1]} 2\n")
    assert main(["evaluate", "--model", "raw-pixels", "--data-dir", str(root), "--pairs", str(pairs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"facenet-tf evaluate: error: pairs file {pairs} has 3 pairs: the LFW protocol's 10 folds need "
                   "at least 10"], err
    few = tmp_path / "few"
    for name in people:
        os.makedirs(few / name)
        os.link(root / name / f"{name}_0001.png", few / name / "a.png")
    os.link(root / people[0] / f"{people[0]}_0002.png", few / people[0] / "b.png")
    assert main(["evaluate", "--model", "raw-pixels", "--data-dir", str(few)]) == 2
    assert "gives 3 pairs of images: the protocol's 10 folds need at least 10" in capsys.readouterr().err


def test_lfw_pair_paths(tmp_path):
    for name, number in [("Ann", 1), ("Ann", 2), ("Bob", 12)]:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / f"{name}_{number:04d}.jpg").write_bytes(b"")
    pairs = [Pair(("Ann", 1), ("Ann", 2), True, None), Pair(("Ann", 1), ("Bob", 12), False, None)]
    paths = lfw_pair_paths(pairs, tmp_path)
    assert paths[1] == (str(tmp_path / "Ann" / "Ann_0001.jpg"), str(tmp_path / "Bob" / "Bob_0012.jpg"))
    assert lfw_pair_paths(pairs, tmp_path, ext="jpg") == paths
    with pytest.raises(FacenetError, match="3 of 3 images .* missing"):
        lfw_pair_paths(pairs, tmp_path, ext=".png")
    missing = pairs + [Pair(("Cid", 1), ("Ann", 3), False, None)]
    with pytest.raises(FacenetError, match=r"2 of 5 images .*Cid_0001"):
        lfw_pair_paths(missing, tmp_path)
    (tmp_path / "Ann" / "Ann_0001.png").write_bytes(b"")
    with pytest.raises(FacenetError, match="several extensions"):
        lfw_pair_paths(pairs, tmp_path)


def test_unrank_pairs_matches_enumeration():
    a, b = _unrank_pairs(np.arange(45))
    ref = sorted(zip(*np.triu_indices(10, 1)), key=lambda p: (p[1], p[0]))
    assert list(zip(a, b)) == ref
    flat = np.array([2**40 + 12345, 2**45 - 1, 10**12])
    a, b = _unrank_pairs(flat)
    assert np.all((0 <= a) & (a < b)) and np.all(b * (b - 1) // 2 + a == flat)


def test_all_pairs_without_cap():
    labels = np.array([0, 0, 1, 1, 1])
    pairs = all_pairs(labels)
    ref = [(i, j, labels[i] == labels[j]) for i in range(5) for j in range(i + 1, 5)]
    assert list(zip(pairs.idx_a, pairs.idx_b, pairs.issame)) == ref
    assert (pairs.total_possible, pairs.sampled, pairs.dropped) == (10, False, 0)


def _check_pair_set(pairs, labels):
    assert np.all(pairs.idx_a < pairs.idx_b)
    assert len(set(zip(pairs.idx_a, pairs.idx_b))) == pairs.num_pairs
    np.testing.assert_array_equal(pairs.issame, labels[pairs.idx_a] == labels[pairs.idx_b])


def test_all_pairs_cap_keeps_positives_when_they_fit():
    labels = np.array(["a", "a", "b", "b", "b", "c"])  # 15 pairs, 4 positive
    pairs = all_pairs(labels, max_pairs=8, seed=1)
    _check_pair_set(pairs, labels)
    assert (pairs.num_pairs, int(pairs.issame.sum())) == (8, 4)
    assert (pairs.total_possible, pairs.sampled, pairs.dropped) == (15, True, 7)
    again = all_pairs(labels, max_pairs=8, seed=1)
    np.testing.assert_array_equal(again.idx_a, pairs.idx_a)
    np.testing.assert_array_equal(again.idx_b, pairs.idx_b)


def test_all_pairs_cap_halves_when_positives_do_not_fit():
    labels = np.array([0] * 6 + [1] * 2)  # 28 pairs: 16 positive, 12 negative
    pairs = all_pairs(labels, max_pairs=10, seed=0)
    _check_pair_set(pairs, labels)
    assert (pairs.num_pairs, int(pairs.issame.sum())) == (10, 5)
    few_negatives = np.array([0] * 7 + [1])  # 28 pairs: 21 positive, 7 negative
    pairs = all_pairs(few_negatives, max_pairs=20, seed=0)
    _check_pair_set(pairs, few_negatives)
    assert (pairs.num_pairs, int(pairs.issame.sum())) == (20, 13)


def test_all_pairs_large_set_samples_without_enumerating():
    labels = np.arange(6000) // 4  # 18M pairs: above the enumeration limit
    pairs = all_pairs(labels, max_pairs=2000, seed=0)
    _check_pair_set(pairs, labels)
    assert (pairs.num_pairs, int(pairs.issame.sum())) == (2000, 1000)
    assert pairs.total_possible == 6000 * 5999 // 2


def test_all_pairs_errors():
    with pytest.raises(FacenetError, match="at least 2"):
        all_pairs([1])
    with pytest.raises(FacenetError, match="max_pairs"):
        all_pairs([1, 2, 3], max_pairs=1)


# ---------------------------------------------------------------------- identification


def test_split_enrolment():
    labels = np.array(["a", "a", "a", "b", "c", "c"])
    enrol, probe = split_enrolment(labels, seed=3)
    assert sorted(labels[enrol]) == ["a", "b", "c"]
    assert sorted(labels[probe]) == ["a", "a", "c"]
    np.testing.assert_array_equal(np.sort(np.concatenate([enrol, probe])), np.arange(6))
    enrol2, probe2 = split_enrolment(labels, images_per_identity=2, seed=3)
    assert sorted(labels[enrol2]) == ["a", "a", "b", "c", "c"]
    assert list(labels[probe2]) == ["a"]
    same = split_enrolment(labels, seed=3)
    np.testing.assert_array_equal(same[0], enrol)
    choices = {tuple(split_enrolment(labels, seed=s)[0]) for s in range(20)}
    assert len(choices) > 1
    with pytest.raises(FacenetError, match="images_per_identity"):
        split_enrolment(labels, images_per_identity=0)


def test_identification_top_k_on_constructed_embeddings():
    gallery = np.eye(6)  # identity i enrolled at e_i
    gallery_labels = np.arange(6)
    probes = np.array([
        [0.9, 0.1, 0, 0, 0, 0],  # identity 0, nearest 0: correct
        [0.0, 0.0, 0, 0, 0.8, 0],  # identity 4, nearest 4: correct
        [0.6, 0.4, 0, 0, 0, 0],  # identity 1, nearest 0 then 1: top-5 only
    ])
    result = identification_metrics(gallery, gallery_labels, probes, [0, 4, 1])
    assert result["one_shot_top1"] == pytest.approx(2 / 3)
    assert result["one_shot_top5"] == 1.0
    assert result["open_set_dir_at_far_1e-2"] is None and result["open_set_threshold"] is None
    assert (result["num_gallery"], result["num_probes"], result["num_unknown"]) == (6, 3, 0)
    # An identity's distance is its nearest gallery image: a second image of 1 near the
    # third probe makes it correct.
    gallery2 = np.vstack([gallery, [0.6, 0.45, 0, 0, 0, 0]])
    result2 = identification_metrics(gallery2, np.r_[gallery_labels, 1], probes, [0, 4, 1], ks=(1,))
    assert result2["one_shot_top1"] == 1.0 and "one_shot_top5" not in result2


def test_identification_collapsed_embeddings_score_nothing():
    gallery = np.zeros((6, 4))
    result = identification_metrics(gallery, np.arange(6), np.zeros((3, 4)), [0, 1, 2])
    assert result["one_shot_top1"] == 0.0 and result["one_shot_top5"] == 0.0


def test_open_set_threshold_and_dir():
    # 1-D embeddings and l2: distances are plain differences.
    gallery = np.array([[0.0], [1000.0]])
    unknown = np.arange(1.0, 101.0)[:, None]  # nearest distances 1 .. 100
    probes = np.array([[2.0], [5.5], [6.0], [7.0], [999.0]])
    result = identification_metrics(
        gallery, ["a", "b"], probes, ["a", "a", "a", "a", "b"], metric="l2",
        unknown_emb=unknown, far=0.05,
    )
    # 5 of 100 unknowns may be accepted: those below 6, the 6th smallest distance.
    assert result["open_set_threshold"] == 6.0
    assert result["open_set_dir_at_far_5e-2"] == pytest.approx(3 / 5)  # 2.0, 5.5, 999.0
    assert result["one_shot_top1"] == 1.0
    assert result["num_unknown"] == 100
    # A smaller FAR lowers the threshold: at 1e-2 only distance 1 is accepted.
    strict = identification_metrics(
        gallery, ["a", "b"], probes, ["a", "a", "a", "a", "b"], metric="l2", unknown_emb=unknown,
    )
    assert strict["open_set_threshold"] == 2.0
    assert strict["open_set_dir_at_far_1e-2"] == pytest.approx(1 / 5)


def test_identification_errors():
    gallery = np.eye(3)
    with pytest.raises(FacenetError, match="enrolled"):
        identification_metrics(gallery, [0, 1, 2], gallery[:1], [7])
    with pytest.raises(FacenetError, match="columns"):
        identification_metrics(gallery, [0, 1, 2], np.ones((1, 2)), [0])
    with pytest.raises(FacenetError, match="far"):
        identification_metrics(gallery, [0, 1, 2], gallery, [0, 1, 2], unknown_emb=gallery, far=1.0)
    with pytest.raises(FacenetError, match="metric"):
        identification_metrics(gallery, [0, 1, 2], gallery, [0, 1, 2], metric="manhattan")
