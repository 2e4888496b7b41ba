"""Fitting continuous responses: where people click that a ball will land (landing x).

Where the hierarchical fit (:mod:`ipe.inference.hierarchical`) reads
ratings and counts, this reads a *position*. The IPE's answer to a landing
stimulus is a distribution over x (the noisy rollouts' landings), so the
emulator here emulates two moments per stimulus over the free noise
parameters θ (any :class:`~ipe.noise.NoiseParams` fields, e.g.
``launch_position`` and ``collision_angle``):

* the mean landing ``m_i(θ)`` and
* the spread ``s_i(θ)`` (standard deviation across rollouts),

each as a smooth tensor P-spline surface (:class:`~ipe.inference.emulator.Emulator`
fitted to the first and second moments of the same common-random-numbers
Monte Carlo). The likelihood, with a response ("motor") noise ``τ`` in the
scene's length unit and ``k`` simulations behind each judgment::

    trial level:     y_tj ~ Normal(m_i(θ), sqrt(s_i(θ)² / k + τ²))
    stimulus means:  ȳ_i  ~ Normal(m_i(θ), sqrt((s_i(θ)² / k + τ²) / n_i))

(a participant who averages ``k`` noisy simulations and clicks, as the
synthetic participants of :func:`synthesize_landings` do). Priors: each θ
uniform over its range (by default the emulator grid's range); τ
half-normal with scale ``motor_scale`` (default a tenth of the responses'
range). θ and τ are shared by all participants (no per-participant
variation in this model). NUTS (Pyro) samples the posterior; the summary
gives each parameter's mean, sd and equal-tailed 90 % interval
(``q05``, ``q95``), R-hat and effective sample size.

Stimuli whose noisy ball sometimes never lands have that rollout left out of
the moments (the emulated answer is conditional on landing).
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..estimator import ParamsMixin
from ..noise import NoiseParams
from ..scene import as_stimulus_set
from .emulator import Emulator

LANDING_RESPONSE_COLUMNS = ("participant", "stimulus_id", "response")
MEANS_COLUMNS = ("stimulus_id", "mean", "n")


class LandingEmulator(ParamsMixin):
    """Emulated mean and spread of a landing query over free noise parameters.

    Parameters
    ----------
    grid:
        ``{name: values}`` per free parameter (NoiseParams fields).
    fixed:
        Other noise parameters, held fixed.
    n_samples, seed, workers, progress:
        The Monte Carlo (common random numbers across the grid).
    query:
        The landing query; ``None`` uses each stimulus's own.
    smoothing:
        P-spline penalty weight (see :class:`Emulator`).

    Notes
    -----
    Fitted attributes: ``stimulus_ids_``, ``names_``, ``centre_`` (per-stimulus
    reference x: the mean over the whole grid), ``mean_emulator_``,
    ``square_emulator_``, ``landed_`` (fraction of rollouts that landed).
    """

    def __init__(self, grid: Mapping[str, Sequence[float]], fixed: Mapping[str, float] | None = None,
                 n_samples: int = 40, seed: int = 0, query: str | None = None, smoothing: float = 1e-3,
                 workers: int = 1, progress: bool | None = None):
        self.grid = grid
        self.fixed = fixed
        self.n_samples = n_samples
        self.seed = seed
        self.query = query
        self.smoothing = smoothing
        self.workers = workers
        self.progress = progress

    def fit(self, stimuli, rollouts: pd.DataFrame | None = None) -> "LandingEmulator":
        """Simulate the grid (or use ``rollouts`` from :func:`ipe.simulate`) and fit both surfaces."""
        from ..montecarlo import simulate

        stimuli = as_stimulus_set(stimuli)
        unknown = [k for k in self.grid if k not in NoiseParams.names()]
        if unknown:
            raise InputError(f"landing emulator: unknown parameter {unknown[0]!r}")
        base = Emulator(grid=self.grid, fixed=self.fixed, n_samples=self.n_samples, seed=self.seed,
                        query=self.query, smoothing=self.smoothing)
        base.grid_values_ = base._grid()
        points = base._points()
        if rollouts is None:
            rollouts = simulate(stimuli, points, n_samples=self.n_samples, seed=self.seed, queries=self.query,
                                workers=self.workers, progress=self.progress, common_random_numbers=True)
        r = rollouts.copy()
        value = r["value"].to_numpy(float)
        centre = r.groupby("stimulus_id", sort=False)["value"].mean()
        if centre.isna().any():
            bad = centre.index[centre.isna()][0]
            raise InputError(f"stimulus {bad!r}: the body never lands in any rollout of the grid")
        d = value - r["stimulus_id"].map(centre).to_numpy(float)
        self.centre_ = np.array([float(centre[s.id]) for s in stimuli])
        self.landed_ = np.array([float(np.mean(np.isfinite(r.loc[r["stimulus_id"] == s.id, "value"])))
                                 for s in stimuli])
        kw = dict(grid=self.grid, fixed=self.fixed, n_samples=self.n_samples, seed=self.seed, query=self.query,
                  smoothing=self.smoothing)
        self.mean_emulator_ = Emulator(**kw).fit(stimuli, rollouts=r.assign(value=d))
        self.square_emulator_ = Emulator(**kw).fit(stimuli, rollouts=r.assign(value=d * d))
        self.stimulus_ids_ = [s.id for s in stimuli]
        self.names_ = self.mean_emulator_.names_
        self.grid_values_ = self.mean_emulator_.grid_values_
        self.rollouts_ = rollouts
        # The smallest spread worth believing: a hundredth of the typical spread on the grid.
        var = self.square_emulator_.grid_means_ - self.mean_emulator_.grid_means_ ** 2
        self.min_sd_ = max(1e-9, 0.01 * float(np.sqrt(np.nanmean(np.clip(var, 0, None)))))
        return self

    def predict(self, theta) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, sd)`` of the landing at ``theta`` (``(..., n_free)`` → two ``(..., n_stimuli)``)."""
        if not hasattr(self, "mean_emulator_"):
            raise InputError("the landing emulator is not fitted yet: call fit(stimuli) first")
        theta = torch.as_tensor(theta, dtype=torch.float64)
        m = self.mean_emulator_.predict(theta)
        sq = self.square_emulator_.predict(theta)
        var = (sq - m * m).clamp_min(self.min_sd_ ** 2)
        return m + torch.as_tensor(self.centre_, dtype=m.dtype), var.sqrt()

    def predict_frame(self, **params: float) -> pd.DataFrame:
        """Mean and sd of the landing per stimulus at one parameter point."""
        missing = [k for k in self.names_ if k not in params]
        if missing:
            raise InputError(f"predict_frame needs {', '.join(missing)}")
        m, s = self.predict(torch.tensor([float(params[k]) for k in self.names_], dtype=torch.float64))
        return pd.DataFrame({"stimulus_id": self.stimulus_ids_, "mean": m.numpy(), "sd": s.numpy()})


def synthesize_landings(stimuli, n_participants: int, params: NoiseParams, motor_sd: float = 10.0,
                        samples_per_judgment: int = 1, seed: int = 0, query: str | None = None,
                        workers: int = 1, progress: bool | None = None) -> pd.DataFrame:
    """Synthetic participants who click where they think the ball lands.

    Participant ``j`` judges each stimulus once: the mean landing x of
    ``samples_per_judgment`` noisy rollouts at ``params`` (their own
    rollouts: samples ``j·k … j·k+k−1``) plus Normal(0, ``motor_sd``) click
    noise. Judgments whose rollouts never land are left out. Returns the
    tidy table ``participant, stimulus_id, response, trial_index``.
    """
    from ..montecarlo import simulate

    stimuli = as_stimulus_set(stimuli)
    if isinstance(n_participants, bool) or not isinstance(n_participants, (int, np.integer)) or n_participants < 1:
        raise InputError(f"n_participants must be a positive integer, got {n_participants!r}")
    if not (math.isfinite(motor_sd) and motor_sd >= 0):
        raise InputError(f"motor_sd must be >= 0, got {motor_sd!r}")
    k = int(samples_per_judgment)
    if k < 1:
        raise InputError(f"samples_per_judgment must be >= 1, got {samples_per_judgment!r}")
    sims = simulate(stimuli, params, n_samples=n_participants * k, seed=seed, queries=query, workers=workers,
                    progress=progress)
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(7,)))
    rows = []
    for t, stim in enumerate(stimuli):
        v = sims.loc[sims["stimulus_id"] == stim.id, "value"].to_numpy(float).reshape(n_participants, k)
        noise = rng.standard_normal(n_participants) * motor_sd
        for j in range(n_participants):
            x = v[j][np.isfinite(v[j])]
            if len(x):
                rows.append({"participant": f"p{j:03d}", "stimulus_id": stim.id,
                             "response": float(x.mean() + noise[j]), "trial_index": t})
    return pd.DataFrame(rows, columns=["participant", "stimulus_id", "response", "trial_index"])


def stimulus_means(responses: pd.DataFrame) -> pd.DataFrame:
    """Per-stimulus mean click and count: the table :class:`LandingFit` takes with ``means=True``."""
    g = responses.groupby("stimulus_id", sort=False)["response"]
    return pd.DataFrame({"stimulus_id": g.mean().index, "mean": g.mean().to_numpy(), "n": g.size().to_numpy()})


def _check_table(table: pd.DataFrame, cols: Sequence[str], where: str) -> pd.DataFrame:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise InputError(f"{where}: missing column(s) {', '.join(missing)} (need {', '.join(cols)})")
    if table.empty:
        raise InputError(f"{where}: the table is empty")
    value = "mean" if "mean" in cols else "response"
    v = pd.to_numeric(table[value], errors="coerce").to_numpy(float)
    bad = np.flatnonzero(~np.isfinite(v))
    if len(bad):
        raise InputError(f"{where}: row {int(bad[0])}: column {value!r} must hold a finite number, "
                         f"got {table[value].iloc[int(bad[0])]!r}")
    if "n" in cols:
        n = pd.to_numeric(table["n"], errors="coerce")
        if n.isna().any() or (n < 1).any():
            raise InputError(f"{where}: column 'n' must hold counts >= 1")
    return table


class LandingFit(ParamsMixin):
    """Bayesian fit of noise parameters to clicked landing positions (NUTS).

    Parameters
    ----------
    free:
        The free noise parameters (must be varied by the emulator).
    ranges:
        ``{name: (lo, hi)}`` priors; default the emulator grid's range.
    samples_per_judgment:
        ``k`` in the likelihood (simulations averaged per judgment).
    motor_scale:
        Scale of the half-normal prior on the response noise τ (length
        units); default a tenth of the responses' range.
    num_warmup, num_samples, num_chains, seed:
        NUTS settings; chains run one after another, each seeded from ``seed``.

    Notes
    -----
    Fitted attributes: ``posterior_`` (``{name: (chains, draws)}``),
    ``summary_`` (one row per parameter: mean, sd, q05, q50, q95, r_hat,
    ess_bulk), ``params_`` (posterior means), ``n_divergent_``.
    """

    def __init__(self, free: Sequence[str] = ("launch_position", "collision_angle"),
                 ranges: Mapping[str, tuple[float, float]] | None = None, samples_per_judgment: int = 1,
                 motor_scale: float | None = None, num_warmup: int = 300, num_samples: int = 300,
                 num_chains: int = 2, seed: int = 0, progress: bool | None = None):
        self.free = free
        self.ranges = ranges
        self.samples_per_judgment = samples_per_judgment
        self.motor_scale = motor_scale
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.seed = seed
        self.progress = progress

    def fit(self, data: pd.DataFrame, emulator: LandingEmulator, means: bool = False) -> "LandingFit":
        """Fit to trial-level clicks (``participant, stimulus_id, response``) or, with ``means=True``,
        to per-stimulus means (``stimulus_id, mean, n``). Returns self."""
        import pyro
        import pyro.distributions as dist
        from pyro.infer import MCMC, NUTS

        cols = MEANS_COLUMNS if means else LANDING_RESPONSE_COLUMNS
        data = _check_table(data, cols, "landing responses" if not means else "landing means")
        index = {sid: i for i, sid in enumerate(emulator.stimulus_ids_)}
        unknown = sorted(set(data["stimulus_id"].astype(str)) - set(index))
        if unknown:
            raise InputError(f"responses: stimulus id {unknown[0]!r} is not among the emulated stimuli")
        missing = [f for f in self.free if f not in emulator.names_]
        if missing or not self.free:
            raise InputError(f"free parameters {', '.join(missing) or '(none)'}: the emulator varies "
                             f"{', '.join(emulator.names_)}")
        for n in ("num_warmup", "num_samples", "num_chains"):
            v = getattr(self, n)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{n} must be a positive integer, got {v!r}")
        ranges = {}
        for n in self.free:
            lo, hi = (self.ranges or {}).get(n, (float(emulator.grid_values_[n][0]),
                                                 float(emulator.grid_values_[n][-1])))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputError(f"parameter {n!r}: range must be two finite numbers lo < hi")
            ranges[n] = (float(lo), float(hi))
        fixed_cols = {n: float(emulator.grid_values_[n][0]) for n in emulator.names_ if n not in self.free}
        stim = torch.tensor([index[str(s)] for s in data["stimulus_id"]], dtype=torch.long)
        y = torch.tensor(pd.to_numeric(data["mean" if means else "response"]).to_numpy(float), dtype=torch.float64)
        n_obs = (torch.tensor(data["n"].to_numpy(float), dtype=torch.float64) if means
                 else torch.ones(len(y), dtype=torch.float64))
        span = float(y.max() - y.min()) if len(y) > 1 else 1.0
        motor_scale = self.motor_scale if self.motor_scale is not None else max(0.1 * span, 1e-6)
        k = float(self.samples_per_judgment)
        names = list(emulator.names_)
        f64 = dict(dtype=torch.float64)

        def loglik(s):
            cols = [s[n] if n in s else torch.tensor(fixed_cols[n], **f64) for n in names]
            m, sd = emulator.predict(torch.stack(cols))
            scale = torch.sqrt((sd[stim] ** 2 / k + s["motor_sd"] ** 2) / n_obs)
            return dist.Normal(m[stim], scale).log_prob(y)

        def model():
            s = {n: pyro.sample(n, dist.Uniform(torch.tensor(ranges[n][0], **f64), torch.tensor(ranges[n][1], **f64)))
                 for n in self.free}
            s["motor_sd"] = pyro.sample("motor_sd", dist.HalfNormal(torch.tensor(motor_scale, **f64)))
            pyro.factor("y", loglik(s).sum())

        chains, divergent = [], 0
        for c in range(self.num_chains):
            pyro.clear_param_store()
            pyro.set_rng_seed(int(np.random.SeedSequence(int(self.seed), spawn_key=(11, c)).generate_state(1)[0]))
            mcmc = MCMC(NUTS(model, target_accept_prob=0.9), num_samples=self.num_samples,
                        warmup_steps=self.num_warmup, num_chains=1, disable_progbar=not bool(self.progress))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mcmc.run()
            chains.append({kk: v.detach().numpy() for kk, v in mcmc.get_samples().items()})
            divergent += len(mcmc.diagnostics().get("divergences", {}).get("chain 0", []))
        self.posterior_ = {kk: np.stack([ch[kk] for ch in chains]) for kk in chains[0]}
        self.n_divergent_ = divergent
        self.ranges_ = ranges
        self.emulator_ = emulator
        self._loglik = loglik
        self.summary_ = self._summary()
        self.params_ = {r.parameter: float(r.mean) for r in self.summary_.itertuples()}
        return self

    def _summary(self) -> pd.DataFrame:
        import arviz as az

        rows = []
        for name, draws in self.posterior_.items():
            flat = draws.reshape(-1)
            try:
                rhat = float(az.rhat(draws)) if draws.shape[0] > 1 else math.nan
                ess = float(az.ess(draws))
            except Exception:  # pragma: no cover - arviz versions differ in what they accept
                rhat, ess = math.nan, math.nan
            rows.append({"parameter": name, "mean": float(flat.mean()), "sd": float(flat.std(ddof=1)),
                         "q05": float(np.quantile(flat, 0.05)), "q50": float(np.quantile(flat, 0.5)),
                         "q95": float(np.quantile(flat, 0.95)), "r_hat": rhat, "ess_bulk": ess})
        order = list(self.free) + ["motor_sd"]
        return pd.DataFrame(rows).set_index("parameter").loc[order].reset_index()

    def save(self, out_dir) -> dict:
        """Write ``params.json`` (posterior means) and ``summary.csv`` to ``out_dir``."""
        from pathlib import Path

        from ..fileio import write_csv, write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"summary": out / "summary.csv", "params": out / "params.json"}
        write_csv(paths["summary"], self.summary_)
        write_json(paths["params"], {"params": self.params_, "free": list(self.free), "ranges": self.ranges_,
                                     "n_divergent": self.n_divergent_, "likelihood": "landing_x gaussian"})
        return paths


__all__ = ["LandingEmulator", "LandingFit", "stimulus_means", "synthesize_landings"]
