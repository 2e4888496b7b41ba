"""Scores that put models and people on the same footing.

* :func:`pearson_ci` — Pearson r with a percentile bootstrap CI over stimuli;
* :func:`cohen_kappa` — Cohen's κ of two raters' categorical judgments;
* :func:`accuracy` — share of matching binary judgments;
* :func:`rmse` — root-mean-square error;
* :func:`split_half_ceiling` — the human noise ceiling (split-half r of the
  stimulus means, Spearman–Brown corrected), from
  :func:`ipe.humans.split_half_reliability`; :data:`NOISE_CEILING` says what
  it means and :func:`format_ceiling` prints it the same way everywhere;
* :func:`kappa_with_humans` / :func:`human_human_kappa` — Physion's
  protocol: κ of a model with each participant, beside the κ between pairs
  of participants.

All random draws (bootstrap resamples, sampled pairs) derive from a user seed
through the named streams ``"ipe.metrics:<name>"`` of :func:`ipe.seeding.stream_rng`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .humans import split_half_reliability
from .seeding import stream_rng
from .validation import Number, validate_params

LEVEL = Number(0.0, 1.0, closed="neither")
"""Rule of an interval's level: strictly between 0 and 1."""


def _rng(seed: int, name: str) -> np.random.Generator:
    return stream_rng(seed, "ipe.metrics:" + name)


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise InputError(f"expected two 1-D arrays of the same length, got shapes {x.shape} and {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def pearson(x, y) -> float:
    """Pearson r over the pairs where both are finite; NaN with fewer than 3 pairs or a constant side."""
    x, y = _pair(x, y)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


@validate_params(level=LEVEL)
def pearson_ci(x, y, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Pearson r and its percentile bootstrap CI (stimuli resampled with replacement).

    Returns ``{"r", "lo", "hi", "n"}``. Resamples whose r is undefined (a
    constant side) are skipped; the CI is NaN when r is.
    """
    x, y = _pair(x, y)
    r = pearson(x, y)
    if not math.isfinite(r):
        return {"r": math.nan, "lo": math.nan, "hi": math.nan, "n": len(x)}
    rng = _rng(seed, "pearson_ci")
    idx = rng.integers(0, len(x), size=(int(n_boot), len(x)))
    xb, yb = x[idx], y[idx]
    xc = xb - xb.mean(1, keepdims=True)
    yc = yb - yb.mean(1, keepdims=True)
    den = np.sqrt((xc ** 2).sum(1) * (yc ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rb = (xc * yc).sum(1) / den
    rb = rb[np.isfinite(rb)]
    if not len(rb):
        return {"r": r, "lo": math.nan, "hi": math.nan, "n": len(x)}
    a = (1 - level) / 2
    return {"r": r, "lo": float(np.quantile(rb, a)), "hi": float(np.quantile(rb, 1 - a)), "n": len(x)}


def cohen_kappa(a, b) -> float:
    """Cohen's κ between two raters' categorical labels (pairs with a missing label are dropped).

    κ = (p_o − p_e) / (1 − p_e). When both raters use a single, identical
    category throughout (p_e = 1), κ is 1 if they agree everywhere, else NaN.
    """
    a = pd.Series(np.asarray(a, dtype=object))
    b = pd.Series(np.asarray(b, dtype=object))
    if len(a) != len(b):
        raise InputError(f"cohen_kappa: raters have {len(a)} and {len(b)} labels")
    ok = a.notna().to_numpy() & b.notna().to_numpy()
    a, b = a[ok].to_numpy(), b[ok].to_numpy()
    n = len(a)
    if n == 0:
        return math.nan
    cats = sorted(set(a.tolist()) | set(b.tolist()), key=str)
    po = float(np.mean(a == b))
    pe = sum(float(np.mean(a == c)) * float(np.mean(b == c)) for c in cats)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else math.nan
    return (po - pe) / (1.0 - pe)


def accuracy(pred, truth) -> float:
    """Share of pairs where ``pred == truth`` (pairs with a NaN dropped); NaN when none is left."""
    p = pd.Series(np.asarray(pred, dtype=object))
    t = pd.Series(np.asarray(truth, dtype=object))
    ok = p.notna().to_numpy() & t.notna().to_numpy()
    if not ok.any():
        return math.nan
    return float(np.mean(p[ok].to_numpy() == t[ok].to_numpy()))


def rmse(pred, truth) -> float:
    """Root-mean-square error over the pairs where both are finite."""
    x, y = _pair(pred, truth)
    if not len(x):
        return math.nan
    return float(np.sqrt(np.mean((x - y) ** 2)))


NOISE_CEILING = "noise ceiling (split-half r of the human means)"
"""The one name of the noise ceiling, as every command prints it.

What it is: the split-half reliability of the per-stimulus human means
(:func:`ipe.humans.split_half_reliability`: the class split at random into
halves, the halves' means correlated, Spearman–Brown corrected to the whole
class), with its 2.5–97.5 % range over splits. What it means: how well these
people's means can be predicted *from the same kind of data*; a model whose r
with the means reaches it does as well as the data can show. It is an
estimate, not a hard limit: a model that predicted the true means exactly
would be expected to reach about its square root, and with few stimuli or
participants — or for the best of many grid points, as in ``ipe sweep`` — a
model's r can land above it by chance. Read a model's r against the whole
range, not the point.
"""

CEILING_HINT = ("A model at or above it does as well as these data can show. It is an estimate, not a hard limit: "
                "a model of the true means would reach about its square root, and with few stimuli a model can "
                "land above it by chance.")
"""One line saying how to read the noise ceiling (printed by ``ipe humans summary``)."""


def split_half_ceiling(responses: pd.DataFrame, n_splits: int = 100, seed: int = 0) -> dict[str, float]:
    """The human noise ceiling (:data:`NOISE_CEILING`): :func:`ipe.humans.split_half_reliability` (r, q025, q975, …)."""

    return split_half_reliability(responses, n_splits=n_splits, seed=seed)


def format_ceiling(ceiling: dict) -> str:
    """``noise ceiling (split-half r of the human means): 0.936 [0.902, 0.961]`` — the line every command prints.

    Without a range (2 participants: one way to split them) it says so instead of a zero-width interval.
    """
    r = ceiling.get("r", math.nan)
    lo, hi = ceiling.get("q025", math.nan), ceiling.get("q975", math.nan)
    if not math.isfinite(r):
        return f"{NOISE_CEILING}: not available (no usable split of the participants)"
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{NOISE_CEILING}: {r:.3f} [{lo:.3f}, {hi:.3f}]"
    n = ceiling.get("n_participants")
    who = f"{n} participants" if n else "these participants"
    return f"{NOISE_CEILING}: {r:.3f} (no range: {who} split only one way; more participants give one)"


def kappa_with_humans(model: pd.Series, human_binary: pd.DataFrame) -> dict[str, float]:
    """κ of a model's per-stimulus labels with each participant's labels: mean, sd and count over participants.

    ``model`` is indexed by ``stimulus_id``; ``human_binary`` has columns
    ``participant, stimulus_id, label``.
    """
    ks = []
    for _, g in human_binary.groupby("participant", sort=True):
        m = model.reindex(g["stimulus_id"]).to_numpy()
        k = cohen_kappa(m, g["label"].to_numpy())
        if math.isfinite(k):
            ks.append(k)
    if not ks:
        return {"kappa": math.nan, "kappa_sd": math.nan, "n": 0}
    return {"kappa": float(np.mean(ks)), "kappa_sd": float(np.std(ks, ddof=1)) if len(ks) > 1 else 0.0,
            "n": len(ks)}


def human_human_kappa(human_binary: pd.DataFrame, max_pairs: int = 500, seed: int = 0) -> dict[str, float]:
    """Mean Cohen's κ between pairs of participants (on the stimuli both answered).

    All pairs when there are at most ``max_pairs``, else ``max_pairs`` pairs
    drawn at random (seeded).
    """
    wide = human_binary.pivot_table(index="participant", columns="stimulus_id", values="label", aggfunc="first")
    people = list(wide.index)
    pairs = [(i, j) for i in range(len(people)) for j in range(i + 1, len(people))]
    if len(pairs) > max_pairs:
        pick = _rng(seed, "human_pairs").choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[k] for k in sorted(pick)]
    vals = wide.to_numpy(dtype=object)
    ks = []
    for i, j in pairs:
        k = cohen_kappa(vals[i], vals[j])
        if math.isfinite(k):
            ks.append(k)
    if not ks:
        return {"kappa": math.nan, "kappa_sd": math.nan, "n": 0}
    return {"kappa": float(np.mean(ks)), "kappa_sd": float(np.std(ks, ddof=1)) if len(ks) > 1 else 0.0,
            "n": len(ks)}


def says_yes(on_scale, scale) -> np.ndarray:
    """The one rule that makes an answer on ``scale`` a yes/no "it falls" (people's and, matched, models'):
    ``count``: at least one body (≥ 0.5); ``probability``: at least the middle; ``rating``: above the middle
    (the middle itself is "unsure" and counts as no)."""
    v = np.asarray(on_scale, dtype=float)
    mid = (scale.low + scale.high) / 2.0
    if scale.kind == "count":
        return v >= 0.5
    if scale.kind == "probability":
        return v >= mid
    return v > mid


def binary_responses(responses: pd.DataFrame, scale) -> pd.DataFrame:
    """Each answer as a yes/no "it falls" label: ``participant, stimulus_id, label`` (0/1).

    ``count`` scales: at least one body (≥ 0.5); ``probability`` scales: at
    least the middle of the scale; ``rating`` scales: above the middle
    (the middle itself is "unsure" and counts as no).
    """
    lab = says_yes(responses["response"].to_numpy(dtype=float), scale)
    out = responses[["participant", "stimulus_id"]].copy()
    out["participant"] = out["participant"].astype(str)
    out["label"] = lab.astype(int)
    return out


def normalise_responses(values, scale) -> np.ndarray:
    """Responses on ``scale`` mapped to [0, 1] (``(v − low) / (high − low)``)."""
    v = np.asarray(values, dtype=float)
    return (v - scale.low) / float(scale.high - scale.low)


__all__: Sequence[str] = ["pearson", "pearson_ci", "cohen_kappa", "accuracy", "rmse", "split_half_ceiling",
                           "NOISE_CEILING", "format_ceiling",
                          "kappa_with_humans", "human_human_kappa", "binary_responses", "normalise_responses"]
