"""A run's set statistic (Fréchet distance, Inception Score) rebuilt from its kept features as a function of row
weights, as the evaluation computed it: what `v2a compare` resamples both runs' rows with.

A Fréchet distance is taken to the reference fit the run was scored against, read back from where the
evaluation stored it (OUT/reference_stats, float64 as computed), with the protocol's rule for a singular
covariance decided on the run's own rows as the evaluation decided it; an Inception Score uses the
evaluation's splits. Unit weights then give the results row's value (up to the features' float32 storage).
"""

from __future__ import annotations

import posixpath

import numpy as np

from v2a.core import storage
from v2a.io.features import Features
from v2a.io.layout import RunLayout
from v2a.metrics import bootstrap
from v2a.metrics.classification import inception_splits
from v2a.metrics.frechet import DEFAULT_EPS, gaussian_stats, singular_offset
from v2a.metrics.protocols import protocol as protocol_named
from v2a.metrics.reference_stats import load_fit
from v2a.metrics.specs import SPECS


class MissingReference(LookupError):
    """The reference statistics a Fréchet row was scored against are no longer stored."""


def reference_location(out: str, recorded: str | None) -> str:
    """Where the reference fit is now: as recorded, else under this output location's reference_stats (a run
    folder copied elsewhere keeps its statistics beside it)."""
    if recorded and storage.exists(recorded):
        return recorded
    if recorded:
        moved = storage.join(RunLayout(out).reference_stats, posixpath.basename(recorded.replace("\\", "/")))
        if storage.exists(moved):
            return moved
    raise MissingReference(f"the reference statistics it was scored against ({recorded or 'not stored'}) are gone")


def weighted_statistic(out: str, metric: str, protocol: str, kept: Features):
    """The metric of `kept`'s rows as a function of (k, rows) weights -> k values."""
    kind = SPECS[metric].kind
    if kind == "inception":
        return bootstrap.InceptionResampler(kept.vectors, inception_splits(len(kept.vectors)))
    if kind != "frechet":
        raise ValueError(f"{metric} is no set statistic")
    ref_mu, ref_sigma = load_fit(reference_location(out, kept.reference_stats))
    features = kept.vectors.astype(np.float64)
    _, sigma = gaussian_stats(features)
    eps = DEFAULT_EPS if singular_offset(sigma, ref_sigma, protocol_named(protocol).fd_offset) else 0.0
    return bootstrap.FrechetResampler(features, ref_mu, ref_sigma, eps=eps)
