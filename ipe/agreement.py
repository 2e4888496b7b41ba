"""Fair yes/no agreement between models and people: matched binarisation, AUC, error consistency, bootstraps.

A person's "it falls" is their answer above the middle of the response
scale (:func:`ipe.metrics.binary_responses`). A model whose yes/no is "most
of my samples fell" answers a different question, and κ then compares
unlike things: an IPE whose samples often have one block slip says "falls"
where its expected answer, the one people give, is low. So here a model's
per-stimulus value, mapped onto the people's scale, is binarised by the
people's own rule (:func:`matched_labels`), and everything is scored on the
same stimuli:

``kappa_matched``
    Cohen's κ of the matched labels with each participant's, mean over
    participants (Physion's protocol with one rule for both sides);
``auc``
    threshold-free: the probability that the model's value ranks a "falls"
    answer of a participant above a "stands" answer (pooled over
    participants, ties count half) — κ over every threshold at once;
``error_consistency``
    Geirhos et al.'s κ between the model's and each participant's
    correct/incorrect vectors over stimuli (correct: agrees with the no-noise
    simulation), mean over participants: do they fail on the same stimuli?
``accuracy_matched``
    matched labels against the no-noise simulation.

Every score comes with a percentile bootstrap interval over stimuli
(:func:`bootstrap_scores`), and :func:`paired_differences` gives the
difference between two models on the same resampled stimuli. Resamples are
drawn from the named streams ``"ipe.agreement:…"`` of :func:`ipe.seeding.stream_rng`.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .metrics import says_yes
from .seeding import stream_rng

SCORES = ("kappa_matched", "auc", "error_consistency", "accuracy_matched")


def matched_labels(values01, scale) -> np.ndarray:
    """A model's values on [0, 1] as yes/no by the rule people's answers get on ``scale`` (NaN stays NaN)."""
    v = np.asarray(values01, dtype=float)
    lab = says_yes(scale.low + v * (scale.high - scale.low), scale)
    return np.where(np.isfinite(v), lab.astype(float), np.nan)


def human_matrix(human_binary: pd.DataFrame, ids) -> np.ndarray:
    """``(participants, stimuli)`` labels 0/1, NaN where a participant did not answer."""
    wide = human_binary.pivot_table(index="participant", columns="stimulus_id", values="label", aggfunc="first")
    return wide.reindex(columns=list(ids)).to_numpy(dtype=float)


def _kappa(m: np.ndarray, h: np.ndarray) -> np.ndarray:
    """κ of binary ``m`` (..., S) with ``h`` (..., S) over the pairs where both are finite; along the last axis."""
    ok = np.isfinite(m) & np.isfinite(h)
    n = ok.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mm = np.where(ok, m, 0.0)
        hh = np.where(ok, h, 0.0)
        po = (ok & (mm == hh)).sum(-1) / n
        pm = mm.sum(-1) / n
        ph = hh.sum(-1) / n
        pe = pm * ph + (1 - pm) * (1 - ph)
        k = (po - pe) / (1 - pe)
    k = np.where(pe >= 1.0 - 1e-12, np.where(po >= 1.0 - 1e-12, 1.0, np.nan), k)
    return np.where(n > 0, k, np.nan)


def _auc(score: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Pooled AUC of ``score`` (B, S) for the labels ``H`` (B, P, S) (NaN-aware), one value per row."""
    from scipy.stats import rankdata

    B = score.shape[0]
    out = np.full(B, np.nan)
    for b in range(B):
        s = np.broadcast_to(score[b][None, :], H[b].shape)
        ok = np.isfinite(s) & np.isfinite(H[b])
        x, y = s[ok], H[b][ok]
        pos, neg = x[y == 1], x[y == 0]
        if not len(pos) or not len(neg):
            continue
        ranks = rankdata(np.concatenate([pos, neg]))
        out[b] = (ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    return out


def _scores(v01: np.ndarray, labels: np.ndarray, H: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """All scores for resampled stimuli: ``v01``, ``labels``, ``gt`` (B, S); ``H`` (B, P, S)."""
    kap = np.nanmean(_kappa(labels[:, None, :], H), axis=1) if H.shape[1] else np.full(len(v01), np.nan)
    model_ok = np.where(np.isfinite(labels) & np.isfinite(gt), (labels == gt).astype(float), np.nan)
    human_ok = np.where(np.isfinite(H) & np.isfinite(gt[:, None, :]), (H == gt[:, None, :]).astype(float), np.nan)
    ec = np.nanmean(_kappa(model_ok[:, None, :], human_ok), axis=1)
    ok = np.isfinite(labels) & np.isfinite(gt)
    with np.errstate(invalid="ignore", divide="ignore"):
        acc = (ok & (labels == gt)).sum(-1) / ok.sum(-1)
    return {"kappa_matched": kap, "auc": _auc(v01, H), "error_consistency": ec, "accuracy_matched": acc}


def _resamples(n_stimuli: int, n_boot: int, seed: int, name: str) -> np.ndarray:
    rng = stream_rng(seed, "ipe.agreement:" + name)
    return rng.integers(0, n_stimuli, size=(int(n_boot), n_stimuli))


def bootstrap_scores(v01, H: np.ndarray, gt, scale, n_boot: int = 1000, level: float = 0.95, seed: int = 0
                     ) -> dict[str, float]:
    """Every score of :data:`SCORES` with ``<score>_lo`` / ``<score>_hi`` (percentile bootstrap over stimuli)."""
    import warnings

    v01 = np.asarray(v01, dtype=float)
    gt = np.asarray(gt, dtype=float)
    labels = matched_labels(v01, scale)
    S = len(v01)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        point = _scores(v01[None], labels[None], H[None], gt[None])
        idx = _resamples(S, n_boot, seed, "scores")
        boot = _scores(v01[idx], labels[idx], np.stack([H[:, i] for i in idx]), gt[idx])
    a = (1 - level) / 2
    out = {}
    for k in SCORES:
        out[k] = float(point[k][0])
        b = boot[k][np.isfinite(boot[k])]
        out[k + "_lo"] = float(np.quantile(b, a)) if len(b) and math.isfinite(out[k]) else math.nan
        out[k + "_hi"] = float(np.quantile(b, 1 - a)) if len(b) and math.isfinite(out[k]) else math.nan
    return out


def paired_differences(values: dict[str, np.ndarray], H: np.ndarray, gt, scale, n_boot: int = 1000,
                       level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """For every pair of models, ``a − b`` of each score on the same resampled stimuli, with its interval.

    ``values`` maps a model name to its per-stimulus values on [0, 1] (one
    order of stimuli for all). Columns: ``model_a, model_b, score, diff,
    lo, hi, p_a_better`` (share of resamples where ``a`` scores higher).
    """
    import warnings

    gt = np.asarray(gt, dtype=float)
    names = list(values)
    S = len(gt)
    idx = _resamples(S, n_boot, seed, "paired")
    Hb = np.stack([H[:, i] for i in idx])
    per = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for n in names:
            v = np.asarray(values[n], dtype=float)
            lab = matched_labels(v, scale)
            per[n] = (_scores(v[None], lab[None], H[None], gt[None]), _scores(v[idx], lab[idx], Hb, gt[idx]))
    a_ = (1 - level) / 2
    rows = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for k in SCORES:
                d0 = float(per[a][0][k][0] - per[b][0][k][0])
                db = per[a][1][k] - per[b][1][k]
                db = db[np.isfinite(db)]
                rows.append({"model_a": a, "model_b": b, "score": k, "diff": d0,
                             "lo": float(np.quantile(db, a_)) if len(db) else math.nan,
                             "hi": float(np.quantile(db, 1 - a_)) if len(db) else math.nan,
                             "p_a_better": float((db > 0).mean()) if len(db) else math.nan})
    return pd.DataFrame(rows, columns=["model_a", "model_b", "score", "diff", "lo", "hi", "p_a_better"])


def human_human_interval(H: np.ndarray, n_boot: int = 200, max_pairs: int = 100, level: float = 0.95,
                         seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval (over stimuli) of the mean human–human κ, on up to ``max_pairs`` pairs."""
    import warnings

    P, S = H.shape
    pairs = [(i, j) for i in range(P) for j in range(i + 1, P)]
    if not pairs or S < 2:
        return math.nan, math.nan
    if len(pairs) > max_pairs:
        rng = stream_rng(seed, "ipe.agreement:pairs")
        pairs = [pairs[k] for k in sorted(rng.choice(len(pairs), size=max_pairs, replace=False))]
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    idx = _resamples(S, n_boot, seed, "human_pairs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        k = np.nanmean(_kappa(np.stack([H[a][:, i] for i in idx]), np.stack([H[b][:, i] for i in idx])), axis=1)
    k = k[np.isfinite(k)]
    if not len(k):
        return math.nan, math.nan
    q = (1 - level) / 2
    return float(np.quantile(k, q)), float(np.quantile(k, 1 - q))
