"""Latent physical properties by inference through the simulator: "which colour is heavier?".

Hamrick, Battaglia, Griffiths & Tenenbaum (2016) showed people towers of
two-coloured blocks, let them watch what happened, and asked which colour was
heavier and by how much. This module is that observer.

Hypothesis: the log density ratio ``κ = log(ρ_A / ρ_B)`` between the scene's
two materials A and B (sorted by name; the colours are reported with them),
prior ``κ ~ Uniform(−log R, log R)`` (``R = 10`` by default, the ratio range
of the experiments).

Likelihood of what was seen: for a hypothesis κ the observer runs
``n_sims`` noisy mental simulations of the scene (perceptual noise σ; seeds
keyed by stimulus, κ and sample as everywhere in ipe) and compares each
simulated outcome with the observed one through a Gaussian kernel on every
body's final displacement (width ``kernel_width`` × the scene's block scale)::

    p(obs | κ) ≈ mean_k  Π_i N(Δ_i^obs ; Δ_i^(k)(κ), w²)

The Pyro model samples κ from the prior and adds one ``pyro.factor`` per
trial. :class:`pyro.infer.Importance` draws the particles (no gradients
needed, the simulator is a black box). The **learning observer** is the
same posterior taken trial by trial: after trial t its belief is the prior
reweighted by the likelihoods of trials 1..t (sequential Bayes), recorded in
``learning_``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..estimator import ParamsMixin
from ..montecarlo import run_sample
from ..noise import NoiseParams
from ..progress import progress_bar
from ..scene import Stimulus
from ..scenefile import as_stimulus_set
from ..seeding import stream_int, text_key
from ..validation import BOOL, NONNEG_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, SEED, Number


def materials(stim: Stimulus) -> tuple[str, str]:
    """The two materials of a stimulus, sorted by name; an error when there are not exactly two."""
    mats = sorted({b.material or "" for b in stim.scene.bodies})
    if len(mats) != 2:
        raise InputError(f"stimulus {stim.id!r}: mass inference needs exactly two materials, found {len(mats)}")
    return mats[0], mats[1]


def with_ratio(stim: Stimulus, log_ratio: float) -> Stimulus:
    """The stimulus with material A's density set to exp(κ) × material B's (B keeps its own)."""
    a, b = materials(stim)
    rho_b = next(x.effective_density for x in stim.scene.bodies if (x.material or "") == b)
    rho_a = rho_b * math.exp(log_ratio)
    bodies = [replace(x, density=rho_a if (x.material or "") == a else rho_b, mass=None) for x in stim.scene.bodies]
    return replace(stim, scene=stim.scene.with_bodies(bodies))


def true_log_ratio(stim: Stimulus) -> float:
    """κ of the stimulus as written (its materials' nominal densities)."""
    a, b = materials(stim)
    rho = {m: next(x.effective_density for x in stim.scene.bodies if (x.material or "") == m) for m in (a, b)}
    return math.log(rho[a] / rho[b])


def outcome(stim: Stimulus, log_ratio: float | None = None, sigma: float = 0.0, seed: int = 0, sample: int = 0,
            point_key: int = 0, early_stop: bool = True) -> np.ndarray:
    """Final displacement (dx, dy) of every body in one rollout → array (n_bodies, 2).

    ``log_ratio=None`` keeps the stimulus's own densities (what was seen);
    ``early_stop=False`` runs the rollout to its horizon.
    """
    s = stim if log_ratio is None else with_ratio(stim, log_ratio)
    _, res = run_sample(s, NoiseParams(sigma=sigma), seed, sample, [s.query], point_key=point_key,
                        early_stop=early_stop)
    return res.final[:, :2] - res.initial[:, :2]


def observe(stimuli, seed: int = 0, early_stop: bool = True) -> pd.DataFrame:
    """What an observer sees: one noise-free rollout of each stimulus as written.

    Returns a tidy table: ``stimulus_id, body, dx, dy`` (one row per body).
    """
    stimuli = as_stimulus_set(stimuli)
    rows = []
    for s in stimuli:
        d = outcome(s, None, sigma=0.0, seed=seed, early_stop=early_stop)
        for b, (dx, dy) in zip(s.scene.bodies, d):
            rows.append({"stimulus_id": s.id, "body": b.id, "dx": float(dx), "dy": float(dy)})
    return pd.DataFrame(rows, columns=["stimulus_id", "body", "dx", "dy"])


#: The declared rule of each option of :class:`MassInference`, checked when :meth:`MassInference.fit` starts.
OPTION_RULES = {"sigma": NONNEG_NUMBER, "n_particles": POSITIVE_INT, "n_sims": POSITIVE_INT,
                "kernel_width": POSITIVE_NUMBER, "max_ratio": Number(1.0, closed="neither"), "seed": SEED,
                "early_stop": BOOL}


class MassInference(ParamsMixin):
    """Infer the heavy:light density ratio from observed outcomes, with the simulator inside Pyro.

    Parameters
    ----------
    sigma:
        The observer's perceptual noise in its mental simulations.
    n_particles:
        Importance samples from the prior.
    n_sims:
        Mental simulations per hypothesis and trial.
    kernel_width:
        Width of the outcome kernel, in block scales.
    max_ratio:
        Prior range: κ uniform on ±log(max_ratio).
    seed:
        Seeds Pyro's prior draws and every simulation.
    early_stop:
        Stop each simulation once the scene rests (``False``: run it to the horizon).

    Notes
    -----
    Fitted attributes: ``particles_`` (κ, log weight, normalised weight),
    ``learning_`` (belief after each trial), ``materials_``, ``colors_``,
    ``summary_`` (posterior P(A heavier), mean and 90% interval of the ratio).
    """

    option_rules = OPTION_RULES

    def __init__(self, sigma: float = 0.1, n_particles: int = 200, n_sims: int = 4, kernel_width: float = 1.0,
                 max_ratio: float = 10.0, seed: int = 0, progress: bool | None = None, early_stop: bool = True):
        self.sigma = sigma
        self.n_particles = n_particles
        self.n_sims = n_sims
        self.kernel_width = kernel_width
        self.max_ratio = max_ratio
        self.seed = seed
        self.progress = progress
        self.early_stop = early_stop


    def trial_log_lik(self, stim: Stimulus, observed: np.ndarray, log_ratio: float) -> float:
        """log p(observed outcome of ``stim`` | κ), by ``n_sims`` noisy simulations and the kernel."""
        w = self.kernel_width * stim.scene.block_scale
        key = text_key(f"kappa={log_ratio!r}")
        lls = []
        for k in range(self.n_sims):
            sim = outcome(stim, log_ratio, sigma=self.sigma, seed=self.seed, sample=k, point_key=key,
                          early_stop=self.early_stop)
            sq = float(np.sum((sim - observed) ** 2))
            n = observed.size
            lls.append(-0.5 * sq / w ** 2 - n * math.log(w * math.sqrt(2 * math.pi)))
        m = max(lls)
        return m + math.log(sum(math.exp(x - m) for x in lls) / len(lls))

    def fit(self, stimuli, observations: pd.DataFrame | None = None) -> "MassInference":
        """Infer κ from ``observations`` (``observe(stimuli)`` when None), trials in the given order."""
        import pyro
        import pyro.distributions as dist
        from pyro.infer import Importance

        self.check_options()
        stimuli = as_stimulus_set(stimuli)
        if len(stimuli) == 0:
            raise InputError("mass inference needs at least one stimulus")
        mats = {materials(s) for s in stimuli}
        if len(mats) != 1:
            raise InputError("mass inference: all stimuli must share the same two materials")
        self.materials_ = next(iter(mats))
        self.colors_ = {m: next((b.color for s in stimuli for b in s.scene.bodies if (b.material or "") == m), None)
                        for m in self.materials_}
        if observations is None:
            observations = observe(stimuli, seed=self.seed, early_stop=self.early_stop)
        trials = self._observed_arrays(stimuli, observations)
        bound = math.log(self.max_ratio)
        cache: dict[tuple[int, float], float] = {}
        bar = progress_bar(self.n_particles, self.progress, desc="mass inference", unit="particle")

        def model():
            kappa = pyro.sample("log_ratio", dist.Uniform(torch.tensor(-bound, dtype=torch.float64),
                                                          torch.tensor(bound, dtype=torch.float64)))
            kv = float(kappa)
            for t, (stim, obs) in enumerate(trials):
                ll = cache.get((t, kv))
                if ll is None:
                    ll = cache[(t, kv)] = self.trial_log_lik(stim, obs, kv)
                pyro.factor(f"trial_{t}", torch.tensor(ll, dtype=torch.float64))
            bar.update(1)

        pyro.set_rng_seed(stream_int(self.seed, "latent.nuts"))
        imp = Importance(model, guide=None, num_samples=self.n_particles)
        try:
            imp.run()
        finally:
            bar.close()
        kappas = np.array([float(tr.nodes["log_ratio"]["value"]) for tr in imp.exec_traces])
        per_trial = np.array([[cache[(t, float(k))] for t in range(len(trials))] for k in kappas])
        self._summarise(kappas, per_trial, [s.id for s, _ in trials])
        return self

    def _observed_arrays(self, stimuli, observations: pd.DataFrame) -> list[tuple[Stimulus, np.ndarray]]:
        need = {"stimulus_id", "body", "dx", "dy"}
        missing = need - set(observations.columns)
        if missing:
            raise InputError(f"observations lack column(s) {', '.join(sorted(missing))}")
        if observations.empty:
            raise InputError("observations: the table is empty")
        by_id = {s.id: s for s in stimuli}
        out = []
        for sid, g in observations.groupby("stimulus_id", sort=False):
            if sid not in by_id:
                raise InputError(f"observations: unknown stimulus {sid!r}")
            stim = by_id[sid]
            bodies = list(g["body"].astype(str))
            pos = {b: i for i, b in enumerate(bodies)}
            ids = list(stim.scene.body_ids)
            dup = sorted({b for b in bodies if bodies.count(b) > 1})
            if dup:
                raise InputError(f"observations: stimulus {sid!r}: body {dup[0]!r} has more than one row")
            unknown = [b for b in bodies if b not in ids]
            if unknown:
                raise InputError(f"observations: stimulus {sid!r} has no body {unknown[0]!r}")
            if set(pos) != set(ids):
                missing_b = [b for b in ids if b not in pos]
                raise InputError(f"observations: stimulus {sid!r} needs one row per body ({len(ids)}); "
                                 f"{missing_b[0]!r} has none")
            dxy = g[["dx", "dy"]].apply(pd.to_numeric, errors="coerce")
            if dxy.isna().to_numpy().any() and not g[["dx", "dy"]].isna().to_numpy().any():
                raise InputError(f"observations: stimulus {sid!r}: dx and dy must be numbers")
            arr = np.array([[dxy["dx"].iloc[pos[b]], dxy["dy"].iloc[pos[b]]] for b in ids], dtype=float)
            if not np.all(np.isfinite(arr)):
                raise InputError(f"observations: stimulus {sid!r} has NaN or infinite displacements")
            out.append((stim, arr))
        return out

    def _summarise(self, kappas: np.ndarray, per_trial: np.ndarray, ids: list[str]) -> None:
        a, b = self.materials_
        cum = np.cumsum(per_trial, axis=1)
        rows = []
        for t in range(per_trial.shape[1] + 1):
            lw = cum[:, t - 1] if t > 0 else np.zeros(len(kappas))
            w = np.exp(lw - lw.max())
            w /= w.sum()
            mean = float(np.sum(w * kappas))
            rows.append({"trial": t, "stimulus_id": ids[t - 1] if t > 0 else "", f"p_{a}_heavier": float(
                np.sum(w[kappas > 0])), "mean_log_ratio": mean, "ratio_geometric_mean": math.exp(mean),
                "ess": float(1.0 / np.sum(w ** 2))})
        self.learning_ = pd.DataFrame(rows)
        lw = cum[:, -1]
        w = np.exp(lw - lw.max())
        w /= w.sum()
        self.particles_ = pd.DataFrame({"log_ratio": kappas, "log_weight": lw, "weight": w})
        order = np.argsort(kappas)
        cdf = np.cumsum(w[order])
        q05 = float(kappas[order][np.searchsorted(cdf, 0.05)])
        q95 = float(kappas[order][min(np.searchsorted(cdf, 0.95), len(cdf) - 1)])
        p_a = float(np.sum(w[kappas > 0]))
        self.summary_ = {"materials": [a, b], "colors": self.colors_, f"p_{a}_heavier": p_a,
                         "heavier": a if p_a >= 0.5 else b, "mean_log_ratio": float(np.sum(w * kappas)),
                         "log_ratio_q05": q05, "log_ratio_q95": q95, "ratio_q05": math.exp(q05),
                         "ratio_q95": math.exp(q95), "ess": float(1.0 / np.sum(w ** 2)),
                         "n_trials": int(per_trial.shape[1]), "n_particles": len(kappas)}


def infer_mass(stimuli, observations: pd.DataFrame | None = None, **kwargs) -> MassInference:
    """Shortcut: ``MassInference(**kwargs).fit(stimuli, observations)``."""
    return MassInference(**kwargs).fit(stimuli, observations)


def mass_variant_stimuli(n_towers: int = 4, seed: int = 0, n_blocks: int = 10) -> Sequence[Stimulus]:
    """Towers with heavy/light blocks (the ``a`` variants only), for demos and tests."""
    from ..stimuli.towers import generate_towers

    pairs = generate_towers(2 * n_towers, seed=seed, n_blocks=n_blocks, mass_variants=True)
    return [s for s in pairs if s.id.endswith("a")]
