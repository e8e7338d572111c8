"""The gap between CLIP's and CLAP's spaces that the mapper has to bridge (paper Fig. 3).

Two views of paired embeddings (the aggregated CLIP vector of a clip and the CLAP embedding of its
own audio): a histogram of their cosine similarities next to that of shuffled (unpaired) pairs,
and a 2-D projection of both sets fitted jointly, so that two separate clouds show the gap. The
same two views compare mapped (pseudo-CLAP) embeddings with the real CLAP ones after training.

Projection: UMAP (umap-learn) for 100 points or more; below that its neighbourhood graph spans
most of the set and says little, and PCA is used (also the fallback when umap-learn is missing).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import numpy as np

from v2a.core import storage
from v2a.core.markdown import picture

log = logging.getLogger(__name__)

PROJECTIONS = ("auto", "umap", "pca", "tsne")
UMAP_MIN_POINTS = 100


@dataclass
class GapReport:
    """What a report measured and where its pictures are."""

    title: str
    names: tuple[str, str]
    n: int
    cosine_paired: dict[str, float]
    cosine_shuffled: dict[str, float]
    projection: str
    images: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        a, b = self.names
        lines = [f"## {self.title}", "",
                 f"{self.n} pairs of {a} and {b} embeddings.", "",
                 "| cosine | mean | median | p5 | p95 |", "|---|---|---|---|---|"]
        for label, stats in (("paired", self.cosine_paired), ("shuffled", self.cosine_shuffled)):
            lines.append(f"| {label} | {stats['mean']:.3f} | {stats['median']:.3f} | {stats['p5']:.3f} | "
                         f"{stats['p95']:.3f} |")
        lines.append("")
        # Embedded: a bare path in a web page is a broken image (the browser asks the page's server for it).
        for kind, uri in self.images.items():
            lines += [f"### {kind}", "", picture(uri, kind), ""]
        lines.append(f"Projection: {self.projection}.")
        return "\n".join(lines)


def _unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected an (N, D) array of embeddings, got shape {x.shape}")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def paired_cosine(a, b) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    a, b = _unit(a), _unit(b)
    if a.shape != b.shape:
        raise ValueError(f"paired embeddings must have the same shape; got {a.shape} and {b.shape} "
                         "(CLIP and CLAP widths differ: the cosine between the two spaces is undefined)")
    return np.sum(a * b, axis=1)


def _stats(values: np.ndarray) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "median": float(np.median(values)),
            "p5": float(np.percentile(values, 5)), "p95": float(np.percentile(values, 95))}


def _shuffled(n: int, rng: np.random.Generator) -> np.ndarray:
    """A permutation without fixed points (a derangement), so no shuffled pair is a real pair."""
    if n < 2:
        return np.arange(n)
    perm = rng.permutation(n)
    fixed = np.flatnonzero(perm == np.arange(n))
    for i in fixed:  # swap each fixed point with its neighbour
        j = (i + 1) % n
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def project_2d(a, b, method: str = "auto", seed: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """Fit one 2-D projection on both sets together; return (a_2d, b_2d, the method used)."""
    if method not in PROJECTIONS:
        raise ValueError(f"projection {method!r} unknown; accepted: {', '.join(PROJECTIONS)}")
    a, b = _unit(a), _unit(b)
    both = np.concatenate([a, b]).astype(np.float32)
    if method == "auto":
        method = "umap" if len(both) >= UMAP_MIN_POINTS and _umap_installed() else "pca"
    if len(both) < 3:
        coords = np.zeros((len(both), 2), np.float32)
    elif method == "umap":
        import umap

        reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(both) - 1), metric="cosine", random_state=seed)
        coords = reducer.fit_transform(both)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        coords = TSNE(n_components=2, perplexity=min(30.0, (len(both) - 1) / 3), init="pca",
                      random_state=seed).fit_transform(both)
    else:
        from sklearn.decomposition import PCA

        coords = PCA(n_components=2, random_state=seed).fit_transform(both)
    return coords[: len(a)], coords[len(a):], method


def _umap_installed() -> bool:
    try:
        import umap  # noqa: F401
    except Exception:  # ImportError, or numba failing to initialise
        log.info("umap-learn is not installed: projecting with PCA")
        return False
    return True


def _save_png(fig, uri: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    with storage.atomic_write(uri, "wb") as handle:
        handle.write(buf.getvalue())
    return uri


def _figures():
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display on a worker
    import matplotlib.pyplot as plt

    return plt


def plot_cosine_histogram(paired: np.ndarray, shuffled: np.ndarray, names: tuple[str, str], uri: str,
                          title: str) -> str:
    plt = _figures()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    lo = float(min(paired.min(), shuffled.min()))
    hi = float(max(paired.max(), shuffled.max()))
    bins = np.linspace(lo, hi if hi > lo else lo + 1e-3, 40)
    ax.hist(shuffled, bins=bins, alpha=0.55, label="shuffled pairs", color="tab:grey")
    ax.hist(paired, bins=bins, alpha=0.75, label="paired (same clip)", color="tab:blue")
    ax.axvline(float(np.mean(paired)), color="tab:blue", linestyle="--", linewidth=1)
    ax.set_xlabel(f"cosine similarity, {names[0]} vs {names[1]}")
    ax.set_ylabel("clips")
    ax.set_title(title)
    ax.legend(frameon=False)
    try:
        return _save_png(fig, uri)
    finally:
        plt.close(fig)


def plot_projection(a2: np.ndarray, b2: np.ndarray, names: tuple[str, str], uri: str, title: str) -> str:
    plt = _figures()
    fig, ax = plt.subplots(figsize=(5.4, 5))
    ax.scatter(a2[:, 0], a2[:, 1], s=9, alpha=0.7, label=names[0], color="tab:blue", marker="o")
    ax.scatter(b2[:, 0], b2[:, 1], s=9, alpha=0.7, label=names[1], color="tab:orange", marker="^")
    if len(a2) <= 300:
        # a faint line per pair shows how far each clip's two embeddings sit apart
        for (x0, y0), (x1, y1) in zip(a2, b2):
            ax.plot([x0, x1], [y0, y1], color="0.8", linewidth=0.4, zorder=0)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(frameon=False, markerscale=2)
    try:
        return _save_png(fig, uri)
    finally:
        plt.close(fig)


def gap_report(a, b, out_dir: str, name: str, title: str, names: tuple[str, str], method: str = "auto",
               seed: int = 0, max_points: int = 5000) -> GapReport:
    """Histogram and projection of two paired (N, D) sets, as PNGs under out_dir."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if len(a) != len(b):
        raise ValueError(f"paired embeddings need the same number of rows; got {len(a)} and {len(b)}")
    if len(a) == 0:
        raise ValueError("no paired embeddings to compare")
    rng = np.random.default_rng(seed)
    cos = paired_cosine(a, b)
    cos_shuffled = paired_cosine(a, b[_shuffled(len(b), rng)])
    report = GapReport(title, names, len(a), _stats(cos), _stats(cos_shuffled), method)
    report.images["cosine histogram"] = plot_cosine_histogram(
        cos, cos_shuffled, names, storage.join(out_dir, f"{name}-cosine.png"), title)
    keep = np.sort(rng.choice(len(a), max_points, replace=False)) if len(a) > max_points else np.arange(len(a))
    a2, b2, report.projection = project_2d(a[keep], b[keep], method, seed)
    report.images["2-D projection"] = plot_projection(
        a2, b2, names, storage.join(out_dir, f"{name}-projection.png"),
        f"{title} ({report.projection.upper() if report.projection != 'tsne' else 't-SNE'})")
    return report


def domain_gap_report(embeddings_uri: str, out_dir: str, aggregator: str = "mean", split: str | None = None,
                      method: str = "auto", seed: int = 0) -> GapReport:
    """Paper Fig. 3 from the embeddings table: aggregated CLIP vs CLAP audio of the same clips."""
    from v2a.io.pairs import load_pairs

    pairs = load_pairs(embeddings_uri, aggregator, seed=seed, split=split, audio_only=True)
    if not len(pairs.clip_ids):
        raise ValueError(f"no clips with both frames and audio in {embeddings_uri}")
    return gap_report(pairs.clip, pairs.clap, out_dir, "domain-gap",
                      f"CLIP ({aggregator} of frames) vs CLAP audio", ("CLIP image", "CLAP audio"),
                      method=method, seed=seed)


def mapped_vs_real_report(mapped, real, out_dir: str, name: str = "mapped-vs-real", method: str = "auto",
                          seed: int = 0) -> GapReport:
    """The same views for mapped (pseudo-CLAP) embeddings against the real CLAP ones, row by row."""
    return gap_report(mapped, real, out_dir, name, "mapped vs real CLAP audio", ("mapped", "real CLAP"),
                      method=method, seed=seed)
