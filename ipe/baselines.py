"""Models to beat: the no-noise ("ground truth") simulation and simple features of a scene.

Each baseline gives one number per stimulus:

``no_noise``
    the stimulus's own query answered by one noise-free rollout (the physics
    "as it is": what a perfect observer with a perfect simulator would say);
``height``
    the tower's height: highest top minus lowest bottom of the dynamic bodies (m);
``com_offset``
    horizontal distance of the bodies' centre of mass from the middle of their
    base, in half-widths of the base (> 1: the centre of mass overhangs the
    base). The base is the x-extent of the bodies whose bottom lies within 1 cm
    of the lowest bottom;
``n_blocks``
    the number of dynamic bodies.

Bodies an intervention removes are left out of the features (for Mental
Jenga the scene people judge is the tower without the removed brick).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .model import IPE
from .scene import Ball, Stimulus, world_vertices
from .scenefile import as_stimulus_set

FEATURES = ("height", "com_offset", "n_blocks")


def _removed(stim: Stimulus) -> set[str]:
    out: set[str] = set()
    for iv in stim.interventions:
        if iv.type == "remove":
            out.update(iv.bodies)
    return out


def _extent(body) -> tuple[float, float, float, float]:
    if isinstance(body, Ball):
        x, y = body.position
        return x - body.radius, x + body.radius, y - body.radius, y + body.radius
    v = np.asarray(world_vertices(body), dtype=float)
    return float(v[:, 0].min()), float(v[:, 0].max()), float(v[:, 1].min()), float(v[:, 1].max())


def scene_features(stim: Stimulus) -> dict[str, float]:
    """The feature values of one stimulus (see the module docstring)."""
    gone = _removed(stim)
    bodies = [b for b in stim.scene.bodies if b.id not in gone]
    if not bodies:
        return {"height": 0.0, "com_offset": 0.0, "n_blocks": 0.0}
    ext = np.array([_extent(b) for b in bodies])
    masses = np.array([b.effective_mass for b in bodies])
    xs = np.array([b.position[0] for b in bodies])
    bottom = ext[:, 2].min()
    base = ext[ext[:, 2] <= bottom + 0.01]
    lo, hi = base[:, 0].min(), base[:, 1].max()
    half = max((hi - lo) / 2.0, 1e-9)
    com = float(np.sum(masses * xs) / np.sum(masses))
    return {"height": float(ext[:, 3].max() - bottom), "com_offset": abs(com - (lo + hi) / 2.0) / half,
            "n_blocks": float(len(bodies))}


def feature_table(stimuli) -> pd.DataFrame:
    """One row per stimulus: ``stimulus_id`` and every feature."""
    stimuli = as_stimulus_set(stimuli)
    rows = [{"stimulus_id": s.id, **scene_features(s)} for s in stimuli]
    return pd.DataFrame(rows, columns=["stimulus_id", *FEATURES])


def no_noise_predictions(stimuli, workers: int = 1, early_stop: bool = True) -> pd.DataFrame:
    """The no-noise model: one noise-free rollout per stimulus → ``stimulus_id, no_noise``.

    ``early_stop=False``: the rollout runs to its horizon (see :func:`ipe.simulate`).
    """

    stimuli = as_stimulus_set(stimuli)
    pred = IPE.ground_truth(workers=workers, progress=False, early_stop=early_stop).predict(stimuli)
    first = pred.groupby("stimulus_id", sort=False)["mean"].first()
    return pd.DataFrame({"stimulus_id": [s.id for s in stimuli],
                         "no_noise": [float(first[s.id]) for s in stimuli]})


def baseline_table(stimuli, workers: int = 1, early_stop: bool = True) -> pd.DataFrame:
    """``stimulus_id``, ``no_noise`` and every feature, one row per stimulus."""
    feats = feature_table(stimuli)
    nn = no_noise_predictions(stimuli, workers=workers, early_stop=early_stop)
    out = feats.merge(nn, on="stimulus_id", how="left")
    return out[["stimulus_id", "no_noise", *FEATURES]]


def minmax(values, orient: float = 1.0) -> np.ndarray:
    """Scale to [0, 1]; ``orient < 0`` flips it (so larger means "more")."""
    v = np.asarray(values, dtype=float)
    span = v.max() - v.min()
    q = (v - v.min()) / span if span > 0 else np.full_like(v, 0.5)
    return 1.0 - q if orient < 0 else q


def pearson(x, y) -> float:
    """Pearson correlation, NaN when either side is constant."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])
