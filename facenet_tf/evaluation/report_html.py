"""A verification report to look at: ``DIR/index.html`` and its PNG figures.

What ``facenet-tf evaluate --report DIR`` and ``facenet-tf gallery calibrate --report DIR`` write:
the ROC (log FAR axis) and DET curves, the same-person and different-person distance
histograms with the threshold marked, the accuracy of each fold, and the hardest pairs of
each class (the two chips the model saw, side by side, with their distance). The page is
plain HTML with relative links to ``figures/*.png``: it opens from the disk, without a server
or anything fetched from the network.

The folder is claimed as a project output (:func:`facenet_tf.ownership.claim`, kind
:data:`REPORT_KIND`) and written to a temporary sibling, then moved into place, so a failed
run leaves the previous report as it was. Figures are drawn with matplotlib's Agg canvas
(extra ``report``), never through pyplot's global state.
"""

from __future__ import annotations

import dataclasses
import html
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from facenet_tf.errors import FacenetError
from facenet_tf.evaluation.metrics import VerificationResult
from facenet_tf.publication import staged

#: The ownership kind of a report folder (the same for ``evaluate`` and ``gallery calibrate``).
REPORT_KIND = "report"
#: Top-level names a report writes in its folder.
REPORT_ENTRIES = ("index.html", "figures")
#: Hardest pairs shown per class.
HARDEST = 6

Chips = Callable[[Sequence[str]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class PairDistances:
    """Every measured pair of an evaluation, what a report draws.

    Attributes:
        paths_a, paths_b: the two images of each pair, ``P`` each.
        distances: float64 ``[P]`` pair distances (smaller: more alike).
        issame: bool ``[P]``, True for same-person pairs.
        result: :class:`VerificationResult` of these pairs.
        distance: the distance's name (axis labels).
    """

    paths_a: Tuple[str, ...]
    paths_b: Tuple[str, ...]
    distances: np.ndarray = dataclasses.field(repr=False, compare=False)
    issame: np.ndarray = dataclasses.field(repr=False, compare=False)
    result: VerificationResult = dataclasses.field(repr=False, compare=False)
    distance: str = "l2"


def hardest_pairs(distances, issame, k: int = HARDEST) -> Tuple[np.ndarray, np.ndarray]:
    """The ``k`` hardest pairs of each class: those nearest to being misjudged.

    Args:
        distances: float ``[P]``.
        issame: bool ``[P]``.
        k: pairs per class.

    Returns:
        ``(different, same)`` int64 index arrays: the different-person pairs of smallest
        distance, ascending, and the same-person pairs of largest distance, descending (ties
        in pair order).
    """
    d = np.asarray(distances, np.float64)
    same = np.asarray(issame, bool)
    different_idx = np.nonzero(~same)[0]
    same_idx = np.nonzero(same)[0]
    different_idx = different_idx[np.argsort(d[different_idx], kind="stable")[:k]]
    same_idx = same_idx[np.argsort(-d[same_idx], kind="stable")[:k]]
    return different_idx.astype(np.int64), same_idx.astype(np.int64)


def model_chips(embedder) -> Chips:
    """What ``embedder`` sees of image files: uint8 ``[N, H, W, 3]`` at its input size, aligned
    the way it aligns (an embedder with an ``aligner``, as the recognizer's), else resized. A
    file the aligner finds no face in (embedded from evidence in the whole image) is shown whole."""
    def chips(paths: Sequence[str]) -> np.ndarray:
        from facenet_tf.data.images import load_images

        aligner = getattr(embedder, "aligner", None)
        if aligner is None:
            return load_images(list(paths), embedder.image_size)
        from facenet_tf.faces.aligner import align_files

        out = []
        for path in paths:  # a few dozen files: one by one, so one faceless file does not blank the rest
            try:
                out.append(align_files(aligner, [path], embedder.image_size, evidence=True)[0][0])
            except FacenetError:
                out.append(load_images([path], embedder.image_size)[0])
        return np.stack(out)
    return chips


def claim_report(output_dir: str, allow_existing: bool = False, inputs: Iterable[Optional[str]] = ()):
    """Check that ``output_dir`` may receive a report (before minutes of embedding): an
    :class:`~facenet_tf.ownership.Ownership` of kind :data:`REPORT_KIND`, written only when the
    report is.

    Args:
        output_dir: the report folder (created when the report is written).
        allow_existing: write beside foreign files of an existing folder.
        inputs: the input folders ``output_dir`` must be apart from.

    Raises:
        FacenetError: matplotlib missing (names the extra); the folder refused by the claim.
    """
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise FacenetError("the report needs matplotlib: install facenet_tf[report]") from None
    from facenet_tf.ownership import claim

    return claim(output_dir, REPORT_KIND, REPORT_ENTRIES, allow_existing=allow_existing, inputs=inputs,
                 flag="--report", create=False)


def write_report(owner, pairs: PairDistances, chips: Optional[Chips], *, title: str,
                 summary: Dict[str, Any], threshold: float, threshold_label: str, hardest: int = HARDEST) -> str:
    """Write the report of ``pairs`` into the claimed folder (see the module docstring).

    Args:
        owner: the folder, from :func:`claim_report`.
        pairs: the measured pairs.
        chips: ``paths -> uint8 [N, H, W, 3]`` (:func:`model_chips`); None: no thumbnails.
        title: the page's title.
        summary: figures listed in a table at the top (name → value).
        threshold: the distance threshold marked on the histogram and used to call a pair an
            error (accepted iff ``distance <= threshold``).
        threshold_label: what the threshold is, e.g. ``"best accuracy"``.
        hardest: pairs shown per class.

    Returns:
        The path of ``index.html``.

    Raises:
        FacenetError: the folder is not writable, or a file appeared in the way meanwhile.
    """
    from matplotlib.figure import Figure

    different_idx, same_idx = hardest_pairs(pairs.distances, pairs.issame, hardest)
    with staged(owner) as tmp:
        figures = os.path.join(tmp, "figures")
        os.makedirs(figures)
        drawn = _draw_curves(Figure, figures, pairs, threshold, threshold_label)
        shown = _draw_pairs(Figure, figures, pairs, chips, different_idx, same_idx, threshold)
        with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
            f.write(_page(title, summary, drawn, shown))
    return owner.path("index.html")


def _save(fig, folder: str, name: str) -> str:
    fig.savefig(os.path.join(folder, name), dpi=96)
    return "figures/" + name


def _draw_curves(Figure, folder: str, pairs: PairDistances, threshold: float, label: str) -> List[Tuple[str, str]]:
    """ROC, DET, histograms and fold accuracies → ``[(relative path, caption)]``."""
    result = pairs.result
    return [
        (_roc(Figure, folder, result), "ROC: true-accept rate against false-accept rate (log axis)"),
        (_det(Figure, folder, result), "DET: false-reject rate against false-accept rate (normal deviate axes)"),
        (_histogram(Figure, folder, pairs, threshold, label),
         f"distances of same-person and different-person pairs; threshold {threshold:.4f} ({label})"),
        (_folds(Figure, folder, result), "accuracy of each fold at the threshold chosen on the other folds"),
    ]


def _roc(Figure, folder: str, result: VerificationResult) -> str:
    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.add_subplot()
    keep = result.far > 0  # a log axis has no 0
    ax.step(result.far[keep], result.tar[keep], where="post", color="C0")
    for target, tar in result.val_at_far.items():
        ax.plot([target], [tar], "o", label=f"TAR@FAR={target:g}: {tar:.3f}")
    ax.set_xscale("log")
    ax.set(xlabel="false-accept rate (FAR)", ylabel="true-accept rate (TAR)", ylim=(0, 1.02),
           title=f"ROC (AUC {result.auc:.4f})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, folder, "roc.png")


def _det(Figure, folder: str, result: VerificationResult) -> str:
    from sklearn.metrics import DetCurveDisplay

    fig = Figure(figsize=(5.5, 4.2))
    ax = fig.add_subplot()
    DetCurveDisplay(fpr=result.far, fnr=1.0 - result.tar).plot(ax=ax, name=f"EER {result.eer:.4f}")
    ax.set(xlabel="false-accept rate", ylabel="false-reject rate", title="DET")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return _save(fig, folder, "det.png")


def _histogram(Figure, folder: str, pairs: PairDistances, threshold: float, label: str) -> str:
    fig = Figure(figsize=(6.5, 4.2))
    ax = fig.add_subplot()
    d, same = pairs.distances, pairs.issame
    bins = np.histogram_bin_edges(d, bins=60)
    # Densities: the different-person pairs outnumber the same-person ones many times.
    ax.hist(d[same], bins=bins, density=True, alpha=0.6, color="C2", label=f"same person ({int(same.sum())})")
    ax.hist(d[~same], bins=bins, density=True, alpha=0.6, color="C3", label=f"different people ({int((~same).sum())})")
    ax.axvline(threshold, color="k", linestyle="--", label=f"threshold {threshold:.4f} ({label})")
    ax.set(xlabel=f"{pairs.distance} distance", ylabel="density", title="pair distances")
    ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    return _save(fig, folder, "distances.png")


def _folds(Figure, folder: str, result: VerificationResult) -> str:
    fig = Figure(figsize=(5.5, 3.6))
    ax = fig.add_subplot()
    acc = np.asarray(result.fold_accuracies)
    ax.bar(np.arange(1, acc.size + 1), acc, color="C0")
    ax.axhline(result.accuracy, color="k", linestyle="--", label=f"mean {result.accuracy:.4f} ± {result.accuracy_std:.4f}")
    ax.set(xlabel="fold", ylabel="accuracy", ylim=(max(0.0, float(acc.min()) - 0.05), 1.0), title="accuracy per fold")
    ax.set_xticks(np.arange(1, acc.size + 1))
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, folder, "folds.png")


def _draw_pairs(Figure, folder: str, pairs: PairDistances, chips: Optional[Chips], different_idx: np.ndarray,
                same_idx: np.ndarray, threshold: float) -> Dict[str, List[Tuple[str, str]]]:
    """One PNG per hardest pair → ``{section: [(relative path, caption)]}``."""
    if chips is None:
        return {}
    order = list(different_idx) + list(same_idx)
    paths = sorted({p for i in order for p in (pairs.paths_a[i], pairs.paths_b[i])})
    faces = dict(zip(paths, chips(paths))) if paths else {}
    shown: Dict[str, List[Tuple[str, str]]] = {"different people, nearest first (false accepts when accepted)": [],
                                               "same person, farthest first (false rejects when rejected)": []}
    sections = list(shown)
    for n, i in enumerate(order):
        d, same = float(pairs.distances[i]), bool(pairs.issame[i])
        wrong = (d <= threshold) != same
        verdict = ("false reject" if same else "false accept") if wrong else ("accepted" if same else "rejected")
        fig = Figure(figsize=(3.2, 1.9))
        for k, path in enumerate((pairs.paths_a[i], pairs.paths_b[i])):
            ax = fig.add_subplot(1, 2, k + 1)
            ax.imshow(faces[path])
            ax.set_axis_off()
        fig.suptitle(f"d = {d:.4f} ({verdict})", fontsize=9, color="C3" if wrong else "k")
        fig.tight_layout()
        name = f"pair_{'same' if same else 'different'}_{n - len(different_idx) if same else n:02d}.png"
        caption = f"{verdict}, distance {d:.4f}: {pairs.paths_a[i]} | {pairs.paths_b[i]}"
        shown[sections[1 if same else 0]].append((_save(fig, folder, name), caption))
    return shown


_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse}"
          "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}figure{display:inline-block;margin:8px;"
          "vertical-align:top}figcaption{font-size:small;max-width:420px;word-break:break-all}")


def _page(title: str, summary: Dict[str, Any], curves: List[Tuple[str, str]],
          shown: Dict[str, List[Tuple[str, str]]]) -> str:
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(_text(v))}</td></tr>" for k, v in summary.items())
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
             f"<style>{_STYLE}</style></head><body><h1>{esc(title)}</h1><table>{rows}</table><h2>Curves</h2>"]
    parts += [_figure(src, caption) for src, caption in curves]
    for section, figures in shown.items():
        parts.append(f"<h2>Hardest pairs: {esc(section)}</h2>")
        parts += [_figure(src, caption) for src, caption in figures] or ["<p>none</p>"]
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _figure(src: str, caption: str) -> str:
    return (f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _text(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
