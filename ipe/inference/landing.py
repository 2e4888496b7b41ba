"""Fitting continuous responses: where people click that a ball will land (landing x).

Where the hierarchical fit (:mod:`ipe.inference.hierarchical`) reads
ratings and counts, this reads a *position*. The IPE's answer to a landing
stimulus is a distribution over x (the noisy rollouts' landings), often with
two or more modes (a ball that goes either way round an obstacle). The fit
uses that whole distribution.

The emulator (:class:`LandingEmulator`) runs one common-random-numbers Monte
Carlo over a grid of the free noise parameters θ (any
:class:`~ipe.noise.NoiseParams` fields, e.g. ``drop_angle`` and
``collision_angle``) and keeps every rollout's landing. The likelihood
(``likelihood="kde"``, the default) is, for one click ``y`` on stimulus i::

    p(y | θ, τ) = Σ_c w_c(θ) · (1/S) Σ_r Normal(y; x_icr, sqrt(h_ic² + τ²))

the landings ``x_icr`` at the corners c of the grid cell that holds θ,
mixed with the multilinear weights ``w_c(θ)`` (the density is interpolated,
never the positions: between two modes it stays two modes), each landing
a Gaussian kernel of bandwidth ``h`` (chosen by leave-one-out likelihood on
those landings, centres variance-corrected so that the density has the
landings' own variance: :func:`variance_corrected`) convolved with the
click noise τ (the density and its Monte Carlo check live in
:mod:`ipe.inference.landing_density`, which ``ipe fit`` reads too). With ``k`` simulations
behind each judgment (``samples_per_judgment``) the x's are means of ``k``
landings.

A per-stimulus **mean of n clicks** has the distribution of the mean of n
draws from that mixture: ``Σ_r Normal(ȳ; b_r, sqrt(h_b² + (h² + τ²)/n))``
over bootstrap means ``b_r`` of n landings (B = 200, seeded), ``h_b`` their
own bandwidth. When ``n`` is unknown the table may leave it out (or the
CLI's ``--n``): :data:`DEFAULT_N` = 20 clicks per stimulus. τ and n are
confounded (only τ²/n is seen), so τ fitted with a wrong n is off by about
``sqrt(n_assumed / n_true)``; the noise parameters θ move much less
(``experiments/plinko.py`` measures both; numbers in ``docs/trajectories.md``).

``likelihood="gaussian"`` keeps the earlier moment-matching likelihood,
``y ~ Normal(m_i(θ), sqrt(s_i(θ)²/k + τ²))`` (means: divided by n), with
``m_i`` and ``s_i`` emulated as smooth P-spline surfaces: it reads a
two-mode landing distribution as one wide one and so pushes the spread
between the modes into τ.

Priors: each θ uniform over its range (by default the emulator grid's
range); τ half-normal with scale ``motor_scale`` (default a tenth of the
responses' range). NUTS (Pyro) samples the posterior; the summary gives
each parameter's mean, sd and equal-tailed 90 % interval (``q05``,
``q95``), R-hat and effective sample size.

The emulator's Monte Carlo error is part of the verdict: after sampling,
:meth:`LandingFit._mc_check` measures how far another set of rollouts per
grid point would tilt the log-likelihood across each posterior (bootstrap
over the rollouts, in nats, ``mc_sd_``); above :data:`MAX_MC_SD` the fit is
not trusted and the advice names the ``--emulator-samples`` that would do.
Or the error is carried into the posterior (``emulator_bootstrap=B``): B
fits, each on a bootstrap replicate of the emulator's rollouts (the same
rows at every grid point), pooled with equal weight; the pooled interval
adds the spread of where other rollouts would put the posterior
(:meth:`LandingFit._pool_check`).
A landing emulator is kept: :meth:`LandingEmulator.save` / ``load``, and
:func:`landing_fit_or_load` stores it content-addressed the moment it is
built (as ``ipe fit`` does its emulator).

Every rollout gives a landing: a ball that never reaches the target answers
its position at the end of the rollout (:func:`ipe.queries.landing`), so no
rollout is silently dropped.
"""

from __future__ import annotations

import io
import json
import math
import time
import warnings
import zipfile
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..estimator import ParamsMixin
from ..noise import NoiseParams
from ..scenefile import as_stimulus_set
from ..seeding import stream_int, stream_rng
from ..progress import progress_bar
from ..validation import (NONNEG_INT, NONNEG_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, SECONDS, SEED, OneOf, Optional,
                          validate_params)
from . import diagnostics
from .emulator import Emulator, fit_and_store, rollout_values
from .hierarchical import FitStopped
from .landing_density import (MAX_MC_SD, MC_CHECK_BOOTSTRAP, LandingDensity, bootstrap_counts,  # noqa: F401
                              emulator_mc_problem, emulator_mc_sd, kde_bandwidth, variance_corrected)
from .posterior import INTERVAL
from .sampling import one_torch_thread, run_chains, run_nuts_chain, seed_pyro

LANDING_RESPONSE_COLUMNS = ("participant", "stimulus_id", "response")
#: Bump when what a saved landing emulator holds changes.
LANDING_EMULATOR_FORMAT = 1
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
    early_stop:
        Let rollouts stop at rest or once the ball has landed (never
        changes a landing); ``False`` simulates every rollout's full horizon.

    Notes
    -----
    Fitted attributes: ``stimulus_ids_``, ``names_``, ``centre_`` (per-stimulus
    reference x: the mean over the whole grid), ``mean_emulator_``,
    ``square_emulator_``, ``landed_`` (fraction of rollouts with a finite
    value), ``samples_`` (``(n_stimuli, n_grid_points, n_samples)`` landings,
    grid points in C order over ``grid_values_``: the whole distribution the
    KDE likelihood reads).
    """

    def __init__(self, grid: Mapping[str, Sequence[float]], fixed: Mapping[str, float] | None = None,
                 n_samples: int = 40, seed: int = 0, query: str | None = None, smoothing: float = 1e-3,
                 workers: int = 1, progress: bool | None = None, early_stop: bool = True):
        self.grid = grid
        self.early_stop = early_stop
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
                                workers=self.workers, progress=self.progress, common_random_numbers=True,
                                early_stop=self.early_stop)
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
        self.samples_ = self._samples(r)
        # The smallest spread worth believing: a hundredth of the typical spread on the grid.
        var = self.square_emulator_.grid_means_ - self.mean_emulator_.grid_means_ ** 2
        self.min_sd_ = max(1e-9, 0.01 * float(np.sqrt(np.nanmean(np.clip(var, 0, None)))))
        return self

    def _samples(self, r: pd.DataFrame) -> np.ndarray:
        """Every rollout's landing as ``(n_stimuli, n_grid_points, n_samples)`` (NaN where a value is missing)."""
        return rollout_values(r, self.stimulus_ids_, self.grid_values_, where="landing emulator")

    # ------------------------------------------------------------------ persistence

    def save(self, path):
        """Save the fitted emulator (every rollout's landing and the settings) to one ``.npz`` file, atomically.

        :meth:`load` rebuilds the surfaces from the landings in a second."""
        from pathlib import Path

        from ..fileio import atomic_write

        if not hasattr(self, "samples_"):
            raise InputError("the landing emulator is not fitted yet: call fit(stimuli) first")
        queries = self.rollouts_.groupby("stimulus_id", sort=False)["query"].first()
        meta = {"kind": "landing", "version": LANDING_EMULATOR_FORMAT, "names": list(self.names_),
                "stimulus_ids": list(self.stimulus_ids_), "queries": [str(queries[s]) for s in self.stimulus_ids_],
                "grid": {k: [float(x) for x in v] for k, v in self.grid_values_.items()},
                "fixed": {k: float(v) for k, v in (self.fixed or {}).items()}, "n_samples": int(self.n_samples),
                "seed": int(self.seed), "query": self.query, "smoothing": float(self.smoothing),
                "early_stop": bool(self.early_stop)}
        buf = io.BytesIO()
        np.savez(buf, meta=np.array(json.dumps(meta)), samples=self.samples_)
        return atomic_write(Path(path), lambda fh: fh.write(buf.getvalue()), mode="wb")

    @classmethod
    def load(cls, path, stimuli) -> "LandingEmulator":
        """The emulator written by :meth:`save` for ``stimuli`` (the same ids, in order; refused otherwise)."""
        from pathlib import Path

        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                samples = np.asarray(z["samples"], dtype=float)
            grid, ids, queries = meta["grid"], list(meta["stimulus_ids"]), list(meta["queries"])
            if meta.get("kind") != "landing" or samples.shape[:2] != (len(ids), int(np.prod([len(v) for v in
                                                                                            grid.values()]))):
                raise ValueError("not a landing emulator")
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            raise InputError(f"{path}: not a landing emulator written by ipe") from None
        stimuli = as_stimulus_set(stimuli)
        if [s.id for s in stimuli] != ids:
            raise InputError(f"{path}: a landing emulator built for other stimuli")
        emu = cls(grid=grid, fixed=meta["fixed"] or None, n_samples=meta["n_samples"], seed=meta["seed"],
                  query=meta["query"], smoothing=meta["smoothing"], early_stop=meta["early_stop"])
        names = list(grid)
        axes = np.meshgrid(*[np.asarray(grid[n], dtype=float) for n in names], indexing="ij")
        n_stim, n_pts, n_s = samples.shape
        fixed = NoiseParams(**(meta["fixed"] or {}))
        # rows in ipe.simulate's order (point, stimulus, sample): the surfaces come out bit for bit the same
        cols = {k: np.full(n_stim * n_pts * n_s, float(getattr(fixed, k))) for k in NoiseParams.names()}
        for n, a in zip(names, axes):
            cols[n] = np.repeat(a.reshape(-1), n_stim * n_s)
        rollouts = pd.DataFrame({**cols, "stimulus_id": np.tile(np.repeat(ids, n_s), n_pts),
                                 "sample": np.tile(np.arange(n_s), n_stim * n_pts),
                                 "query": np.tile(np.repeat(queries, n_s), n_pts),
                                 "value": samples.transpose(1, 0, 2).reshape(-1)})
        return emu.fit(stimuli, rollouts=rollouts)

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


def landing_emulator_path(emulator: LandingEmulator, stimuli, root=None):
    """Where the landing emulator with ``emulator``'s settings for ``stimuli`` is stored: beside ``ipe fit``'s
    emulators (:func:`ipe.inference.emulator.emulator_store_path`), named by the same content key (stimuli,
    grid, fixed values, rollouts per point, seed, query, early stopping, physics version)."""
    from .emulator import emulator_key, emulator_store_path

    twin = Emulator(grid=emulator.grid, fixed=emulator.fixed, n_samples=emulator.n_samples, seed=emulator.seed,
                    query=emulator.query, smoothing=emulator.smoothing, early_stop=emulator.early_stop)
    key = emulator_key(twin, stimuli)
    path = emulator_store_path(key, root)
    return path.with_name(f"landing{LANDING_EMULATOR_FORMAT}-{key}.npz")


def landing_fit_or_load(emulator: LandingEmulator, stimuli, store=True):
    """``(emulator, path, reused)``: ``emulator`` fitted to ``stimuli``, or the identical one stored by an earlier
    run. ``store``: ``True`` (the simulation cache's directory), a directory, or ``False`` (build, do not store).
    A freshly built emulator is stored the moment it is built, so a fit stopped during sampling, or run again,
    restarts without simulating; a stored file that does not load is rebuilt and replaced."""
    from pathlib import Path

    stimuli = as_stimulus_set(stimuli)
    if store is False or store is None:
        return emulator.fit(stimuli), None, False
    path = landing_emulator_path(emulator, stimuli, None if store is True else Path(store))
    if path.is_file():
        try:
            loaded = LandingEmulator.load(path, stimuli)
        except InputError:
            loaded = None
        if loaded is not None:
            loaded.set_params(workers=emulator.workers, progress=emulator.progress)
            return loaded, path, True
    return fit_and_store(emulator, stimuli, path)


@validate_params(n_participants=POSITIVE_INT, motor_sd=NONNEG_NUMBER, samples_per_judgment=POSITIVE_INT,
                 seed=SEED)
def synthesize_landings(stimuli, n_participants: int, params: NoiseParams, motor_sd: float = 10.0,
                        samples_per_judgment: int = 1, seed: int = 0, query: str | None = None,
                        workers: int = 1, progress: bool | None = None) -> pd.DataFrame:
    """Synthetic participants who click where they think the ball lands.

    Participant ``j`` judges each stimulus once: the mean landing x of
    ``samples_per_judgment`` noisy rollouts at ``params`` (their own
    rollouts: samples ``j·k … j·k+k−1``) plus Normal(0, ``motor_sd``) click
    noise. (A ball that never lands answers where it ended, so no judgment is
    lost; non-finite values of other queries are left out.) Returns the
    tidy table ``participant, stimulus_id, response, trial_index``.
    """
    from ..montecarlo import simulate

    stimuli = as_stimulus_set(stimuli)
    k = samples_per_judgment
    sims = simulate(stimuli, params, n_samples=n_participants * k, seed=seed, queries=query, workers=workers,
                    progress=progress)
    rng = stream_rng(seed, "landing.responses")
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


DEFAULT_N = 20
"""Clicks behind each per-stimulus mean when the table gives no ``n`` (see the module docstring)."""

LIKELIHOODS = ("kde", "gaussian")


def default_free(stimuli, query: str | None = None) -> tuple[str, ...]:
    """Free parameters that suit how the balls start: ``drop_angle, collision_angle`` for balls released at
    rest (Plinko), ``launch_angle, collision_angle`` for balls that start moving."""
    from ..scene import Ball
    from ..trajectories import landing_query

    moving = False
    for s in as_stimulus_set(stimuli):
        body = s.scene.body(landing_query(s, query).params["body"])
        if isinstance(body, Ball) and tuple(body.velocity) != (0.0, 0.0):
            moving = True
    return ("launch_angle", "collision_angle") if moving else ("drop_angle", "collision_angle")


def _landing_model(free: Sequence[str], ranges: dict[str, tuple[float, float]], motor_scale: float, loglik):
    """The Pyro model: uniform priors on the free parameters, a half-normal one on the click noise τ."""
    import pyro
    import pyro.distributions as dist

    f64 = dict(dtype=torch.float64)

    def model():
        s = {n: pyro.sample(n, dist.Uniform(torch.tensor(ranges[n][0], **f64), torch.tensor(ranges[n][1], **f64)))
             for n in free}
        s["motor_sd"] = pyro.sample("motor_sd", dist.HalfNormal(torch.tensor(motor_scale, **f64)))
        pyro.factor("y", loglik(s).sum())
    return model


#: The declared rule of each option of :class:`LandingFit`, checked when :meth:`LandingFit.fit` starts.
OPTION_RULES = {
    "likelihood": OneOf(*LIKELIHOODS, description="one of " + ", ".join(LIKELIHOODS)),
    "default_n": POSITIVE_INT, "num_warmup": POSITIVE_INT, "num_samples": POSITIVE_INT, "num_chains": POSITIVE_INT,
    "samples_per_judgment": POSITIVE_INT, "max_tree_depth": POSITIVE_INT, "seed": SEED,
    "motor_scale": Optional(POSITIVE_NUMBER), "max_time": Optional(SECONDS), "emulator_bootstrap": NONNEG_INT,
}
#: With ``emulator_bootstrap``: the largest Monte Carlo se of the pooled posterior mean, from the spread of the
#: replicates' means over their number, as a fraction of the pooled posterior sd, that a fit accepts (a quarter:
#: at least 16 "effective" replicates' worth of the between-replicate spread).
MAX_POOL_SE = 0.25
#: NUTS's target acceptance probability in every landing fit (Pyro's MCMC default is 0.8; these posteriors have
#: kinks at the grid values, where a smaller step helps).
TARGET_ACCEPT = 0.9


class LandingFit(ParamsMixin):
    """Bayesian fit of noise parameters to clicked landing positions (NUTS).

    Parameters
    ----------
    free:
        The free noise parameters (must be varied by the emulator); ``None``:
        every parameter the emulator varies.
    ranges:
        ``{name: (lo, hi)}`` priors; default the emulator grid's range.
    samples_per_judgment:
        ``k`` in the likelihood (simulations averaged per judgment).
    motor_scale:
        Scale of the half-normal prior on the response noise τ (length
        units); default a tenth of the responses' range.
    likelihood:
        ``"kde"`` (default: the whole simulated landing distribution, see
        the module docstring) or ``"gaussian"`` (its mean and sd only).
    default_n:
        Clicks behind each per-stimulus mean when the means table has no
        ``n`` column (default :data:`DEFAULT_N`).
    num_warmup, num_samples, num_chains, seed, max_tree_depth:
        NUTS settings; chains run one after another, each seeded from ``seed``
        (``max_tree_depth`` 8: at most 255 gradient steps per draw), driven
        step by step by :func:`ipe.inference.sampling.run_nuts_chain`.
    progress:
        ``None``: a bar in a terminal (stage, chain, step size, tree depth,
        divergences so far, ETA); ``True``: also a plain line every few
        seconds when stderr is not a terminal; ``False``: nothing
        (:mod:`ipe.progress`).
    emulator_bootstrap:
        ``B > 0``: carry the emulator's Monte Carlo error into the posterior.
        The fit is run on B bootstrap replicates of the emulator (its rollouts
        drawn with replacement, the same ones at every grid point, so the
        common random numbers are kept; KDE likelihood only), ``num_chains``
        chains each, and the B posteriors are pooled (equal weight): the
        pooled interval is the posterior's width plus the spread of where
        other sets of rollouts would put it. ``mc_between_`` says how much of
        each interval is the emulator's; the verdict asks for more replicates
        when the pooled mean is not known to :data:`MAX_POOL_SE` posterior
        sds. Costs B fits. ``0`` (default): one fit on the emulator as it is,
        whose Monte Carlo error is only measured (``mc_sd_``).
    max_time:
        Seconds of sampling after which the chains stop and the draws so far
        are kept (``stopped_early_``; the verdict says so; chains are cut to
        the shortest). Stopped before the first draw:
        :class:`~ipe.inference.hierarchical.FitStopped`. ``None``: no limit.

    Notes
    -----
    Fitted attributes: ``posterior_`` (``{name: (chains, draws)}``),
    ``summary_`` (one row per parameter: mean, sd, q05, q50, q95 — the
    :data:`~ipe.inference.posterior.INTERVAL` — r_hat, ess_bulk, ess_tail),
    ``params_`` (posterior means), ``n_divergent_``, ``diverging_`` and
    ``tree_depth_`` (per draw), ``n_used_`` (the n per mean, when fitted to
    means), ``stopped_early_``, ``verdict_`` (the convergence
    :class:`~ipe.inference.diagnostics.Verdict`: R-hat ≤ 1.01, bulk and tail
    ESS ≥ 400, no divergences, tree depth not saturated, no pile-up at the
    grid's upper edge, and the emulator's Monte Carlo error below
    :data:`MAX_MC_SD`; a failed check is a
    :class:`~ipe.inference.diagnostics.ConvergenceWarning`), ``problems_``
    (the failed checks' messages), ``mc_sd_`` (``{parameter: nats}``, the
    emulator's Monte Carlo error across each posterior, see
    :meth:`_mc_check`; KDE likelihood only), and with ``emulator_bootstrap``
    ``replicate_`` (the replicate of each chain), ``mc_between_`` and
    ``pool_se_`` (:meth:`_pool_check`).
    """

    option_rules = OPTION_RULES

    def __init__(self, free: Sequence[str] | None = None,
                 ranges: Mapping[str, tuple[float, float]] | None = None, samples_per_judgment: int = 1,
                 motor_scale: float | None = None, num_warmup: int = 300, num_samples: int = 300,
                 num_chains: int = 2, seed: int = 0, progress: bool | None = None, likelihood: str = "kde",
                 default_n: int = DEFAULT_N, max_tree_depth: int = 8, max_time: float | None = None,
                 emulator_bootstrap: int = 0):
        self.emulator_bootstrap = emulator_bootstrap
        self.max_tree_depth = max_tree_depth
        self.max_time = max_time
        self.free = free
        self.ranges = ranges
        self.samples_per_judgment = samples_per_judgment
        self.motor_scale = motor_scale
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.num_chains = num_chains
        self.seed = seed
        self.progress = progress
        self.likelihood = likelihood
        self.default_n = default_n


    def fit(self, data: pd.DataFrame, emulator: LandingEmulator, means: bool = False) -> "LandingFit":
        """Fit to trial-level clicks (``participant, stimulus_id, response``) or, with ``means=True``,
        to per-stimulus means (``stimulus_id, mean`` and, when known, ``n``). Returns self."""
        started = time.monotonic()
        self.check_options()
        deadline = started + self.max_time if self.max_time is not None else None
        if not hasattr(emulator, "samples_"):
            raise InputError("the landing emulator is not fitted yet: call fit(stimuli) first")
        data = self._checked_table(data, emulator, means)
        self.free_ = tuple(self._free(emulator))
        ranges = self._ranges(emulator)
        stim_idx = [self._index(emulator)[str(s)] for s in data["stimulus_id"]]
        y = torch.tensor(pd.to_numeric(data["mean" if means else "response"]).to_numpy(float), dtype=torch.float64)
        n_col = (np.rint(pd.to_numeric(data["n"]).to_numpy(float)).astype(int) if means
                 else np.ones(len(y), dtype=int))
        if self.emulator_bootstrap and self.likelihood != "kde":
            raise InputError("emulator_bootstrap needs likelihood='kde' (it resamples the simulated landings)")
        loglik = self._likelihood(emulator, stim_idx, n_col, y)
        span = float(y.max() - y.min()) if len(y) > 1 else 1.0
        motor_scale = self.motor_scale if self.motor_scale is not None else max(0.1 * span, 1e-6)
        if self.emulator_bootstrap:
            models = [_landing_model(self.free_, ranges, motor_scale, ll) for ll in self._replicates()]
        else:
            models = [_landing_model(self.free_, ranges, motor_scale, loglik)]
        # Small tensors: one thread is faster than several fighting over a shared machine (10x here).
        with one_torch_thread():
            chains, replicate, stopped = self._run(models, deadline)
        self.stopped_early_ = stopped
        self.elapsed_ = time.monotonic() - started
        if not chains:
            raise FitStopped(f"landing fit: stopped by max_time={self.max_time:g} s before the first draw "
                             f"(after {self.elapsed_:.0f} s): nothing to save")
        n = min(ch.n_draws for ch in chains)  # a stopped chain is cut to the shortest
        self.replicate_ = np.asarray(replicate) if self.emulator_bootstrap else None
        self.posterior_ = {kk: np.stack([ch.samples[kk][:n] for ch in chains]) for kk in chains[0].samples}
        self.diverging_ = np.stack([ch.diverging[:n] for ch in chains])
        self.tree_depth_ = np.stack([ch.tree_depth[:n] for ch in chains])
        self.n_divergent_ = int(self.diverging_.sum())
        self.ranges_ = ranges
        self.emulator_ = emulator
        self.n_used_ = n_col if means else None
        self._loglik = loglik
        self.summary_ = self._summary()
        self.params_ = {r.parameter: float(r.mean) for r in self.summary_.itertuples()}
        with one_torch_thread():
            self.mc_sd_ = self._mc_check(emulator)
        self.mc_between_, self.pool_se_ = {}, {}
        self.verdict_ = self._verdict(emulator)
        self.problems_ = [p["message"] for p in self.verdict_.problems] + [e["message"] for e in self.verdict_.edges]
        diagnostics.warn(self.verdict_)
        return self

    # ------------------------------------------------------------------ the steps of fit()
    @staticmethod
    def _index(emulator: LandingEmulator) -> dict[str, int]:
        return {sid: i for i, sid in enumerate(emulator.stimulus_ids_)}

    def _checked_table(self, data: pd.DataFrame, emulator: LandingEmulator, means: bool) -> pd.DataFrame:
        """The clicks (or means, with ``n`` filled in from ``default_n``), checked against the emulated stimuli."""
        if means and "n" not in data.columns and isinstance(data, pd.DataFrame):
            data = data.assign(n=int(self.default_n))
        cols = MEANS_COLUMNS if means else LANDING_RESPONSE_COLUMNS
        data = _check_table(data, cols, "landing responses" if not means else "landing means")
        unknown = sorted(set(data["stimulus_id"].astype(str)) - set(self._index(emulator)))
        if unknown:
            raise InputError(f"responses: stimulus id {unknown[0]!r} is not among the emulated stimuli")
        return data

    def _free(self, emulator: LandingEmulator) -> list[str]:
        """The free parameters: the given ones (each varied by the emulator), else all the emulator varies."""
        free = list(emulator.names_) if self.free is None else list(self.free)
        missing = [f for f in free if f not in emulator.names_]
        if missing or not free:
            raise InputError(f"free parameters {', '.join(missing) or '(none)'}: the emulator varies "
                             f"{', '.join(emulator.names_)}")
        return free

    def _ranges(self, emulator: LandingEmulator) -> dict[str, tuple[float, float]]:
        """Each free parameter's prior range: the given one, else the emulator grid's."""
        ranges = {}
        for n in self.free_:
            lo, hi = (self.ranges or {}).get(n, (float(emulator.grid_values_[n][0]),
                                                 float(emulator.grid_values_[n][-1])))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise InputError(f"parameter {n!r}: range must be two finite numbers lo < hi")
            ranges[n] = (float(lo), float(hi))
        return ranges

    def _likelihood(self, emulator: LandingEmulator, stim_idx: list[int], n_col: np.ndarray, y: torch.Tensor):
        """``loglik(sites) -> (observations,)``: the KDE mixture of the simulated landings, or their Gaussian."""
        import pyro.distributions as dist

        names = list(emulator.names_)
        fixed_cols = {n: float(emulator.grid_values_[n][0]) for n in names if n not in self.free_}
        f64 = dict(dtype=torch.float64)
        k = self.samples_per_judgment
        self._mc_parts = None
        if self.likelihood == "kde":
            keys = sorted(set(zip(stim_idx, n_col.tolist())))
            gid = {key: g for g, key in enumerate(keys)}
            group = torch.tensor([gid[(s_, int(n_))] for s_, n_ in zip(stim_idx, n_col)], dtype=torch.long)
            mix = LandingDensity(emulator, keys, k, self.seed)
            self._mc_parts = (mix, group, y, {n: fixed_cols[n] for n in fixed_cols})

            def loglik(s):
                theta = {n: (s[n] if n in s else torch.tensor(fixed_cols[n], **f64)) for n in names}
                return mix.loglik(theta, s["motor_sd"], group, y)
            return loglik
        stim = torch.tensor(stim_idx, dtype=torch.long)
        n_obs = torch.tensor(n_col, dtype=torch.float64)

        def loglik(s):
            cols = [s[n] if n in s else torch.tensor(fixed_cols[n], **f64) for n in names]
            m, sd = emulator.predict(torch.stack(cols))
            scale = torch.sqrt((sd[stim] ** 2 / k + s["motor_sd"] ** 2) / n_obs)
            return dist.Normal(m[stim], scale).log_prob(y)
        return loglik

    def _mc_check(self, emulator: LandingEmulator) -> dict[str, float]:
        """The emulator's Monte Carlo error where the posterior sits: ``{parameter: sd}`` in nats.

        For each free parameter, the log-likelihood ratio between the
        posterior mean ± one posterior sd (the others at their posterior
        means, τ at its posterior mean) is recomputed on
        :data:`MC_CHECK_BOOTSTRAP` bootstrap resamples of the emulator's
        rollouts (the same rollouts at every grid point, as simulated with
        common random numbers; seeded). Its sd is how far another set of
        rollouts would tilt the likelihood across the posterior's width: above
        :data:`MAX_MC_SD` nats the posterior's place is set by which rollouts
        were drawn as much as by the data. Empty for the Gaussian likelihood.
        """
        if self._mc_parts is None:
            return {}
        mix, group, y, fixed = self._mc_parts
        counts = bootstrap_counts(mix.centres.shape[2], MC_CHECK_BOOTSTRAP, self.seed, "landing.mc_check")
        f64 = dict(dtype=torch.float64)
        tau = torch.tensor(self.params_["motor_sd"], **f64)

        def total(values, chunk):
            theta = {n: torch.tensor(v, **f64) for n, v in {**values, **fixed}.items()}
            return mix.loglik_resampled(theta, tau, group, y, chunk).sum(dim=1)
        sd = self.summary_.set_index("parameter")["sd"]
        return emulator_mc_sd(total, {n: self.params_[n] for n in self.free_}, {n: float(sd[n]) for n in self.free_},
                              self.ranges_, counts)

    def _verdict(self, emulator: LandingEmulator) -> diagnostics.Verdict:
        """The convergence verdict of :mod:`ipe.inference.diagnostics` (as ``ipe fit``'s), with the free
        parameters whose posterior piles up at the upper edge of the emulator's grid."""
        n_chains, n_draws = self.diverging_.shape
        if self.replicate_ is not None:  # R-hat is each replicate's own: the chains per replicate count
            n_chains = int(np.bincount(self.replicate_).min())
        verdict = diagnostics.check_convergence(
            self.summary_, n_chains, n_draws, self.diverging_.ravel(), self.tree_depth_.ravel(),
            self.max_tree_depth, hierarchical=False, free=tuple(self.free_), stopped_early=self.stopped_early_,
            quick=None)  # fit-landing has no quick approximate method (and no hierarchy to turn off)
        grid = {k: (float(np.min(v)), float(np.max(v))) for k, v in emulator.grid_values_.items()}
        edges = diagnostics.edge_problems({k: self.posterior_[k] for k in self.free_}, grid)
        for e in edges:
            e["message"] = (f"{e['share']:.0%} of the posterior of {e['parameter']} lies at the {e['edge']} edge of "
                            f"the emulator's grid ({e['value']:g}): the data want values the emulator does not "
                            "cover; widen the grid (--grid-max, or LandingEmulator(grid=...))")
        verdict.edges = edges
        if self.replicate_ is not None:
            self._pool_check(verdict)
        else:
            emulator_mc_problem(verdict, self.mc_sd_, emulator.n_samples,
                                "give the emulator more rollouts per grid point (--emulator-samples {need} or more), "
                                "or carry its error into the intervals (--emulator-bootstrap 10)")
        return verdict

    def _pool_check(self, verdict: diagnostics.Verdict) -> None:
        """With ``emulator_bootstrap``: the intervals carry the emulator's Monte Carlo error when the pooled
        posterior is known well enough from its B replicates. Sets ``mc_between_`` (per free parameter, the
        share of the pooled variance that lies between the replicates' means: the emulator's part of the
        interval) and ``pool_se_`` (the Monte Carlo se of the pooled mean, ``sd(replicate means) / sqrt(B)``, as
        a fraction of the pooled sd); above :data:`MAX_POOL_SE` the fit asks for more replicates."""
        reps = np.unique(self.replicate_)
        self.mc_between_, self.pool_se_ = {}, {}
        for n in self.free_:
            draws = self.posterior_[n]
            total = float(np.var(draws))
            means = np.array([draws[self.replicate_ == b].mean() for b in reps])
            between = float(np.var(means))
            self.mc_between_[n] = between / total if total > 0 else 0.0
            self.pool_se_[n] = (math.sqrt(between / len(reps)) / math.sqrt(total)) if total > 0 else 0.0
        worst = max(self.pool_se_.items(), key=lambda kv: kv[1], default=None)
        if worst is not None and worst[1] > MAX_POOL_SE:
            need = int(math.ceil(len(reps) * (worst[1] / MAX_POOL_SE) ** 2))
            verdict.problems.append({
                "check": "emulator_pool", "parameter": worst[0], "value": worst[1], "threshold": MAX_POOL_SE,
                "message": f"emulator bootstrap: the pooled mean of {worst[0]} is known only to ±{worst[1]:.2f} "
                           f"posterior sds from {len(reps)} replicates (more than {MAX_POOL_SE:g})"})
            verdict.advice.append(f"pool more bootstrap replicates (--emulator-bootstrap {need} or more)")
            verdict.converged = False

    def _run(self, models: list, deadline: float | None):
        """The NUTS chains (``num_chains`` per model: one model, or one per bootstrap replicate), one after
        another, each seeded from its own stream, with progress; stops at the deadline. ``(chains that made
        draws, the replicate of each, stopped)``."""
        steps = len(models) * self.num_chains * (self.num_warmup + self.num_samples)
        bar = progress_bar(steps, self.progress, desc="landing fit", unit="step")
        pooled = bool(self.emulator_bootstrap)  # one model per replicate

        def chain(model, b: int, c: int):
            def job(chain_bar):
                # one model: the stream every earlier fit used; replicates: their own (same draws for any B)
                key = ("landing.pool_chain", b, c) if pooled else ("landing.nuts_chain", c)
                seed_pyro(stream_int(self.seed, *key), clear=True)
                return run_nuts_chain(model, None, self.num_warmup, self.num_samples, target_accept=TARGET_ACCEPT,
                                      max_tree_depth=self.max_tree_depth, jit=False, bar=chain_bar,
                                      deadline=deadline, label=labels[b * self.num_chains + c])
            return job

        labels = [(f"replicate {b + 1}/{len(models)} " if pooled else "") + f"chain {c + 1}/{self.num_chains}"
                  for b in range(len(models)) for c in range(self.num_chains)]
        jobs = [chain(m, b, c) for b, m in enumerate(models) for c in range(self.num_chains)]
        try:
            results = run_chains(jobs, 1, bar, labels=labels, desc="landing fit: NUTS")
        finally:
            bar.close()
        kept = [i for i, r in enumerate(results) if r.n_draws]
        stopped = any(r.stopped for r in results)
        return [results[i] for i in kept], [i // self.num_chains for i in kept], stopped

    def _replicates(self) -> list:
        """One log-likelihood per bootstrap replicate of the emulator: the KDE mixture with its rows (rollouts,
        the same ones at every grid point) drawn with replacement (stream ``landing.emulator_bootstrap``)."""
        mix, group, y, fixed = self._mc_parts
        counts = bootstrap_counts(mix.centres.shape[2], self.emulator_bootstrap, self.seed,
                                  "landing.emulator_bootstrap")
        f64 = dict(dtype=torch.float64)
        names = list(mix.names)

        def one(b: int):
            def loglik(s):
                theta = {n: (s[n] if n in s else torch.tensor(fixed[n], **f64)) for n in names}
                return mix.loglik_resampled(theta, s["motor_sd"], group, y, counts[b:b + 1])[0]
            return loglik
        return [one(b) for b in range(self.emulator_bootstrap)]

    def _summary(self) -> pd.DataFrame:
        import arviz as az

        rows = []
        # pooled over bootstrap replicates: each replicate's chains target their own posterior, so R-hat is each
        # replicate's own (the worst one) and ESS the replicates' sum (they are independent)
        parts = ([np.flatnonzero(self.replicate_ == b) for b in np.unique(self.replicate_)]
                 if self.replicate_ is not None else [np.arange(next(iter(self.posterior_.values())).shape[0])])
        for name, all_draws in self.posterior_.items():
            flat = all_draws.reshape(-1)
            rhats, esss, tails = [], [], []
            for part in parts:
                draws = all_draws[part]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # arviz warns about few draws; the verdict says so
                    rhats.append(float(az.rhat(draws)) if draws.shape[0] > 1 else math.nan)
                    esss.append(float(az.ess(draws, method="bulk")) if draws.shape[1] > 3 else math.nan)
                    tails.append(float(az.ess(draws, method="tail")) if draws.shape[1] > 3 else math.nan)
            rhat = float(np.nanmax(rhats)) if np.isfinite(rhats).any() else math.nan
            ess, ess_tail = sum(esss), sum(tails)
            rows.append({"parameter": name, "mean": float(flat.mean()),
                         "sd": float(flat.std(ddof=1)) if len(flat) > 1 else math.nan,
                         "q05": float(np.quantile(flat, 0.05)), "q50": float(np.quantile(flat, 0.5)),
                         "q95": float(np.quantile(flat, 0.95)), "r_hat": rhat, "ess_bulk": ess,
                         "ess_tail": ess_tail})
        order = list(self.free_) + ["motor_sd"]
        return pd.DataFrame(rows).set_index("parameter").loc[order].reset_index()

    def draws(self) -> pd.DataFrame:
        """Every posterior draw: ``chain, draw`` and one column per parameter."""
        first = next(iter(self.posterior_.values()))
        chain, draw = np.meshgrid(np.arange(first.shape[0]), np.arange(first.shape[1]), indexing="ij")
        extra = {} if self.replicate_ is None else {"replicate": self.replicate_[chain.ravel()]}
        return pd.DataFrame({"chain": chain.ravel(), "draw": draw.ravel(), **extra,
                             **{k: v.reshape(-1) for k, v in self.posterior_.items()}})

    def save(self, out_dir) -> dict:
        """Write ``params.json`` (posterior means, with the verdict in ``_meta``), ``summary.csv``,
        ``draws.csv`` and ``convergence.json`` to ``out_dir``."""
        from pathlib import Path

        from ..fileio import write_csv, write_json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"summary": out / "summary.csv", "params": out / "params.json", "draws": out / "draws.csv",
                 "convergence": out / "convergence.json"}
        verdict = self.verdict_.as_dict()
        write_csv(paths["summary"], self.summary_)
        write_csv(paths["draws"], self.draws())
        write_json(paths["convergence"], verdict)
        write_json(paths["params"], {"params": self.params_, "free": list(self.free_), "ranges": self.ranges_,
                                     "n_divergent": self.n_divergent_,
                                     "likelihood": f"landing_x {self.likelihood}",
                                     "_meta": {"interval": INTERVAL, "converged": verdict["converged"],
                                               "stopped_early": bool(self.stopped_early_),
                                               "emulator_mc_sd": dict(self.mc_sd_),
                                               "emulator_bootstrap": int(self.emulator_bootstrap),
                                               "emulator_between_share": dict(self.mc_between_),
                                               "draws_per_chain": int(self.diverging_.shape[1]),
                                               "chains": int(self.diverging_.shape[0]),
                                               "convergence": verdict}})
        return paths


__all__ = ["DEFAULT_N", "MAX_MC_SD", "LandingEmulator", "LandingFit", "default_free", "kde_bandwidth",
           "landing_emulator_path", "landing_fit_or_load", "stimulus_means", "synthesize_landings",
           "variance_corrected"]
