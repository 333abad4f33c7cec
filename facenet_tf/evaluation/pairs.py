"""Verification pairs: LFW's pairs.txt and all pairs of a labelled set.

LFW names an image by identity and number; ``("Aaron_Peckham", 2)`` is the file
``root/Aaron_Peckham/Aaron_Peckham_0002.jpg``. :func:`read_lfw_pairs` keeps those keys
and :func:`lfw_pair_paths` turns them into paths, so parsing needs no image folder.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import NamedTuple, Optional, Tuple

import numpy as np

from facenet_tf.errors import FacenetError

logger = logging.getLogger("facenet_tf")

# Above this many i < j pairs, negatives are sampled by rejection instead of enumerated.
_ENUMERATE_LIMIT = 2_000_000


class Pair(NamedTuple):
    """One LFW pair: two ``(identity, image_number)`` keys, the label and the fold.

    ``fold`` is the View 2 fold (0-based), or None for a plain list of pairs.
    """

    path_a_key: Tuple[str, int]
    path_b_key: Tuple[str, int]
    issame: bool
    fold: Optional[int]


def read_lfw_pairs(path):
    """Parse an LFW pairs file.

    Two layouts are accepted:

    * View 2 (``pairs.txt``): a first line ``"10 300"`` (folds, pairs per class), then for
      each fold 300 same-person lines ``name i j`` followed by 300 different-person lines
      ``name1 i name2 j``. Each pair gets its fold id, 0-based.
    * A plain list (``pairsDevTrain.txt``, or any list): an optional first line with one
      number, then same- and different-person lines in any order; ``fold`` is None.

    Fields are separated by any whitespace; blank lines are skipped. The file is UTF-8 (a
    byte-order mark is ignored). A pair naming the same image twice is refused: it would
    score as a perfect match. A pair listed again (in either order) is counted once: the
    repeat is left out with a warning naming both lines.

    Args:
        path: path of the pairs file.

    Returns:
        list of :class:`Pair`, in file order.

    Raises:
        FacenetError: if the file cannot be read or is not UTF-8, a line is malformed or
            names one image twice (the message gives its line number), or a View 2 file
            breaks the announced layout.
    """
    lines = _read_lines(path)
    rows = [(number, line.split()) for number, line in enumerate(lines, 1) if line.strip()]
    if not rows:
        raise FacenetError(f"pairs file {path!r} holds no pairs")

    first_number, header = rows[0]
    if len(header) == 2:
        n_folds, per_class = (_positive_int(path, first_number, field, "header") for field in header)
        return _once(path, _read_view2(path, rows[1:], n_folds, per_class))
    if len(header) == 1:
        _positive_int(path, first_number, header[0], "header")
        rows = rows[1:]
    pairs = []
    for number, fields in rows:
        key_a, key_b, issame = _parse_pair(path, number, fields)
        pairs.append((number, Pair(key_a, key_b, issame, None)))
    return _once(path, pairs)


def _read_lines(path):
    """The file's lines, decoded strictly as UTF-8 (a leading byte-order mark dropped)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as err:
        raise FacenetError(f"cannot read pairs file {path!r}: {err.strerror or err}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FacenetError(f"pairs file {path!r}, line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                           "save the file as UTF-8") from None
    return text.splitlines()


def _once(path, numbered):
    """The pairs of ``(line number, Pair)`` with each pair counted once (in either order): a
    repeat is left out with a warning naming its line and the first one."""
    first, pairs = {}, []
    for number, pair in numbered:
        key = frozenset((pair.path_a_key, pair.path_b_key))
        if key in first:
            logger.warning("pairs file %r, line %d repeats the pair of line %d (%s): counted once", path, number,
                           first[key], _pair_text(pair))
            continue
        first[key] = number
        pairs.append(pair)
    return pairs


def _pair_text(pair):
    (name_a, i), (name_b, j) = pair.path_a_key, pair.path_b_key
    return f"{name_a} {i} {j}" if pair.issame else f"{name_a} {i} {name_b} {j}"


def lfw_pair_paths(pairs, root, ext=None):
    """Image paths of LFW pairs: ``root/Name/Name_0001.ext``.

    Args:
        pairs: iterable of :class:`Pair` (or of ``(key_a, key_b, ...)`` tuples).
        root: the LFW image folder, one sub-folder per identity.
        ext: file extension such as ``"jpg"`` or ``".png"``; default None finds each
            image's extension in its folder.

    Returns:
        list of ``(path_a, path_b)`` str tuples, one per pair, in order.

    Raises:
        FacenetError: if ``root`` is not a folder, or images are missing (one error
            giving the count and the first few), or with ``ext=None`` an image exists
            under several extensions.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FacenetError(f"LFW root {root!r} is not a folder")
    if ext is not None:
        ext = "." + str(ext).lstrip(".")
    pairs = list(pairs)
    keys = dict.fromkeys(key for pair in pairs for key in pair[:2])
    stems_by_folder = {}
    resolved, missing, ambiguous = {}, [], []
    for name, image_number in keys:  # one step per distinct image
        stem = f"{name}_{int(image_number):04d}"
        folder = os.path.join(root, name)
        if ext is not None:
            path = os.path.join(folder, stem + ext)
            if os.path.isfile(path):
                resolved[name, image_number] = path
            else:
                missing.append(path)
            continue
        if folder not in stems_by_folder:
            stems_by_folder[folder] = _files_by_stem(folder)
        found = stems_by_folder[folder].get(stem, [])
        if len(found) == 1:
            resolved[name, image_number] = os.path.join(folder, found[0])
        elif found:
            ambiguous.append(os.path.join(folder, stem) + " (" + ", ".join(sorted(found)) + ")")
        else:
            missing.append(os.path.join(folder, stem + ".*"))
    if missing:
        raise FacenetError(
            f"{len(missing)} of {len(keys)} images named by the pairs are missing under "
            f"{root!r}, e.g. {', '.join(missing[:5])}"
        )
    if ambiguous:
        raise FacenetError(
            f"{len(ambiguous)} images exist under several extensions; pass ext: "
            + "; ".join(ambiguous[:3])
        )
    return [(resolved[tuple(pair[0])], resolved[tuple(pair[1])]) for pair in pairs]


@dataclasses.dataclass(frozen=True)
class PairSet:
    """Index pairs of a labelled set, from :func:`all_pairs`.

    ``idx_a < idx_b`` elementwise, sorted by ``(idx_a, idx_b)``. ``total_possible`` is
    the number of i < j pairs; ``sampled`` tells whether some were dropped to fit
    ``max_pairs`` (``dropped`` says how many).
    """

    idx_a: np.ndarray = dataclasses.field(compare=False)
    idx_b: np.ndarray = dataclasses.field(compare=False)
    issame: np.ndarray = dataclasses.field(compare=False)
    total_possible: int
    sampled: bool

    @property
    def num_pairs(self):
        return int(self.idx_a.size)

    @property
    def dropped(self):
        return self.total_possible - self.num_pairs


def all_pairs(labels, max_pairs=None, seed=0):
    """All i < j pairs of a labelled set, or a seeded sample of at most ``max_pairs``.

    When the ``N (N - 1) / 2`` pairs exceed ``max_pairs``: if the same-person pairs fit in
    half the cap, all are kept and the rest of the cap is filled with different-person
    pairs drawn uniformly without replacement; otherwise half the cap is drawn from each
    class (fewer from one class if it has fewer). Sampling never builds the N x N set:
    pairs are drawn as flat indices and mapped to ``(i, j)`` arithmetically.

    Args:
        labels: 1-D array of identity labels (ints or strings), length N >= 2.
        max_pairs: optional int >= 2, the most pairs returned; default None (all).
        seed: int seed of the sampling; same seed, same pairs.

    Returns:
        :class:`PairSet` with int64 ``idx_a``, ``idx_b`` and bool ``issame``.

    Raises:
        FacenetError: if ``labels`` is not 1-D with at least 2 items, or ``max_pairs`` is
            not an int >= 2.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size < 2:
        raise FacenetError(f"labels must be 1-D with at least 2 items; received shape {labels.shape}")
    if max_pairs is not None and (
        isinstance(max_pairs, bool) or not isinstance(max_pairs, (int, np.integer)) or max_pairs < 2
    ):
        raise FacenetError(f"max_pairs must be None or an int >= 2; received {max_pairs!r}")
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    n = labels.size
    total = n * (n - 1) // 2
    if max_pairs is None or total <= max_pairs:
        idx_a, idx_b = np.triu_indices(n, 1)
        idx_a, idx_b = idx_a.astype(np.int64), idx_b.astype(np.int64)
        return PairSet(idx_a, idx_b, codes[idx_a] == codes[idx_b], total, False)

    rng = np.random.default_rng(seed)
    counts = np.bincount(codes).astype(np.int64)
    num_positive = int(np.sum(counts * (counts - 1) // 2))
    num_negative = total - num_positive
    n_neg = min(num_negative, max_pairs - min(num_positive, max_pairs // 2))
    n_pos = min(num_positive, max_pairs - n_neg)

    flat = np.arange(n_pos) if n_pos == num_positive else rng.choice(num_positive, n_pos, replace=False)
    pos_a, pos_b = _positive_pairs(codes, counts, flat)
    neg_a, neg_b = _sample_negatives(codes, n_neg, num_negative, rng)
    idx_a = np.concatenate([pos_a, neg_a])
    idx_b = np.concatenate([pos_b, neg_b])
    order = np.lexsort((idx_b, idx_a))
    idx_a, idx_b = idx_a[order], idx_b[order]
    return PairSet(idx_a, idx_b, codes[idx_a] == codes[idx_b], total, True)


def _unrank_pairs(flat):
    """Map flat indices of the pairs (a, b), a < b, ordered by b then a, to (a, b).

    Pairs with second index b start at flat index b (b - 1) / 2, so b is the largest
    integer with b (b - 1) / 2 <= flat.
    """
    flat = np.asarray(flat, dtype=np.int64)
    b = ((1.0 + np.sqrt(1.0 + 8.0 * flat)) // 2).astype(np.int64)
    # The float square root can be off by one for large indices; correct exactly.
    b = np.where(b * (b - 1) // 2 > flat, b - 1, b)
    b = np.where((b + 1) * b // 2 <= flat, b + 1, b)
    return flat - b * (b - 1) // 2, b


def _positive_pairs(codes, counts, flat):
    """Same-identity pairs at flat indices, enumerated identity by identity."""
    members = np.argsort(codes, kind="stable")  # stable: original order within identity
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    sizes = counts * (counts - 1) // 2
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    identity = np.searchsorted(offsets, flat, side="right") - 1
    a, b = _unrank_pairs(flat - offsets[identity])
    return members[starts[identity] + a], members[starts[identity] + b]


def _sample_negatives(codes, n_neg, num_negative, rng):
    """``n_neg`` distinct different-identity pairs, uniform without replacement."""
    n = codes.size
    total = n * (n - 1) // 2
    if total <= _ENUMERATE_LIMIT:
        idx_a, idx_b = np.triu_indices(n, 1)
        negative = np.nonzero(codes[idx_a] != codes[idx_b])[0]
        pick = negative if n_neg == negative.size else rng.choice(negative, n_neg, replace=False)
        return idx_a[pick].astype(np.int64), idx_b[pick].astype(np.int64)
    # Rejection: i.i.d. uniform pairs, keep different-identity ones, first occurrence of
    # each in draw order. The first n_neg distinct accepted draws are a uniform subset.
    kept = np.empty(0, dtype=np.int64)
    while kept.size < n_neg:
        unseen = (num_negative - kept.size) / num_negative
        size = int((n_neg - kept.size) * 1.2 / unseen * total / num_negative) + 64
        draw = rng.integers(0, total, size=size, dtype=np.int64)
        a, b = _unrank_pairs(draw)
        kept = np.concatenate([kept, draw[codes[a] != codes[b]]])
        first = np.unique(kept, return_index=True)[1]
        kept = kept[np.sort(first)]
    return _unrank_pairs(kept[:n_neg])


def _read_view2(path, rows, n_folds, per_class):
    expected = n_folds * 2 * per_class
    if len(rows) != expected:
        raise FacenetError(
            f"pairs file {path!r}: header announces {n_folds} folds x 2 x {per_class} = "
            f"{expected} pairs; found {len(rows)} pair lines"
        )
    pairs = []
    for k, (number, fields) in enumerate(rows):
        fold, position = divmod(k, 2 * per_class)
        key_a, key_b, issame = _parse_pair(path, number, fields)
        if issame != (position < per_class):
            wanted = "same-person 'name i j'" if position < per_class else "different-person 'name1 i name2 j'"
            raise FacenetError(
                f"pairs file {path!r}, line {number}: fold {fold} expects a {wanted} pair "
                f"here ({per_class} same then {per_class} different per fold); "
                f"received {' '.join(fields)!r}"
            )
        pairs.append((number, Pair(key_a, key_b, issame, fold)))
    return pairs


def _parse_pair(path, number, fields):
    if len(fields) in (3, 4):
        name_a, i, name_b, j = fields if len(fields) == 4 else (fields[0], fields[1], fields[0], fields[2])
        key_a, key_b = (name_a, _positive_int(path, number, i)), (name_b, _positive_int(path, number, j))
        if key_a == key_b:
            raise FacenetError(f"pairs file {path!r}, line {number}: the pair names the same image twice "
                               f"({name_a} {key_a[1]}); a pair needs two images")
        return key_a, key_b, len(fields) == 3
    raise FacenetError(
        f"pairs file {path!r}, line {number}: expected 'name i j' or 'name1 i name2 j'; "
        f"received {' '.join(fields)!r}"
    )


def _positive_int(path, number, text, what="image number"):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise FacenetError(
            f"pairs file {path!r}, line {number}: {what} must be a positive integer; received {text!r}"
        )
    return value


def _files_by_stem(folder):
    by_stem = {}
    try:
        names = os.listdir(folder)
    except OSError:
        return by_stem
    for name in names:
        by_stem.setdefault(os.path.splitext(name)[0], []).append(name)
    return by_stem
