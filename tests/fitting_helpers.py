"""Shared helpers of the fit tests: cheap analytic emulators, synthetic answers, response scales."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from ipe.inference import HierarchicalFit
from ipe.inference.emulator import FixedPredictions

RATING = SimpleNamespace(kind="rating", low=1, high=7)
PROB = SimpleNamespace(kind="probability", low=0, high=100)
POSITION = SimpleNamespace(kind="position", low=0, high=100)


def quiet_fit(**kw):
    """A HierarchicalFit made with its warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return HierarchicalFit(**kw)


class LineEmulator(FixedPredictions):
    """A cheap analytic 'emulator': P(fall) of stimulus i rises with sigma at its own rate."""

    def __init__(self, n_stim: int):
        super().__init__([f"s{i}" for i in range(n_stim)], np.zeros(n_stim))
        self.rates = torch.linspace(0.5, 4.0, n_stim, dtype=torch.float64)
        self.names_ = ("sigma",)
        self.grid_values_ = {"sigma": np.array([0.0, 1.0])}

        self.grid_sd_ = np.zeros((2, n_stim))  # it has spreads: predict_sd below

    def predict(self, theta):
        theta = torch.as_tensor(theta, dtype=torch.float64)
        return 1.0 - torch.exp(-self.rates * theta[..., :1])

    def predict_sd(self, theta):
        p = self.predict(theta)
        return torch.sqrt(p * (1 - p)).clamp_min(1e-3)  # one rollout's answer is 0 or 1


def synth(emu, kind, low, high, sigma, n_part=16, seed=0, reps=2):
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(n_part):
        s_j = 1 / (1 + np.exp(-(np.log(sigma / (1 - sigma)) + 0.3 * rng.standard_normal())))
        p = emu.predict(torch.tensor([s_j])).numpy()
        for _ in range(reps):
            for i, sid in enumerate(emu.stimulus_ids_):
                lat = p[i] + rng.normal(0, 0.1)
                y = np.clip(np.round(low + (high - low) * lat), low, high)
                rows.append((f"p{j}", sid, float(y)))
    return pd.DataFrame(rows, columns=["participant", "stimulus_id", "response"])


class PositionEmulator(LineEmulator):
    """Where a ball lands (0–100) moves with σ at a rate of its own; the IPE's spread is 3 everywhere.

    Its "rollouts" (``samples_``, what a position fit's kernel density reads) are the mean plus 3 × the
    normal quantiles at 161 grid values of σ (the same quantiles at every grid value, as common random numbers)."""

    def __init__(self, n_stim: int, rollouts: int = 200):
        from scipy.stats import norm

        super().__init__(n_stim)
        self.grid_values_ = {"sigma": np.linspace(0.0, 1.0, 161)}
        mean = self.predict(torch.as_tensor(self.grid_values_["sigma"][:, None])).numpy().T  # (stimuli, grid)
        z = norm.ppf((np.arange(rollouts) + 0.5) / rollouts)
        self.samples_ = mean[..., None] + 3.0 * z

    def predict(self, theta):
        return 100 * super().predict(theta)

    def predict_sd(self, theta):
        shape = torch.as_tensor(theta).shape[:-1] + (len(self.stimulus_ids_),)
        return torch.full(shape, 3.0, dtype=torch.float64)
