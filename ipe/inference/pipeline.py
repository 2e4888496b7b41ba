"""The fit workflow in one call: responses and stimuli in, a :class:`FitResult` out.

::

    import ipe

    result = ipe.fit_responses("responses.csv", "stimuli.json", free=("sigma", "phi"),
                               scale="rating:1-7", grid={"sigma": [0, .1, .2, .4], "phi": [0, .1, .2, .4]})
    result.converged          # the convergence verdict (R-hat, ESS, divergences, tree depth)
    result.summary()          # mean, sd, 90% equal-tailed interval, ESS, R-hat
    result.params             # {name: {mean, sd, q05, q95}}
    result.predict(stimuli, population=True)
    result.save("fit")        # params.json, posterior.nc, diagnostics.csv, convergence.json, ...

It validates the responses against the stimuli and the scale, builds the
emulator (or reuses the identical one stored by an earlier run,
:func:`~ipe.inference.emulator.fit_or_load`), samples with progress and an
optional time limit, checks convergence, and writes the outputs. ``ipe fit``
is this call plus argument parsing and printing.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Mapping, Sequence

import pandas as pd

from ..errors import InputError
from ..fingerprint import check_stimulus_set
from ..humans import ResponseScale, load_jspsych, load_responses, scale_for_stimuli, validate_responses
from ..montecarlo import predict_population, simulate, summarize
from ..noise import NoiseParams
from ..scenefile import as_stimulus_set, load_stimuli
from ..validation import BOOL, POSITIVE_NUMBER, SECONDS, Optional, validate_params
from .emulator import DEFAULT_GRID, Emulator, fit_or_load
from .hierarchical import FitStopped, HierarchicalFit
from .hierarchical_model import prior_ranges
from .posterior import INTERVAL


@dataclass
class FitResult:
    """What :func:`fit_responses` returns: the fitted estimator, its emulator and the data it saw."""

    estimator: HierarchicalFit
    emulator: Emulator
    stimuli: object
    responses: pd.DataFrame
    emulator_path: Path | None = None
    emulator_reused: bool = False
    timings: dict = field(default_factory=dict)

    @property
    def params(self) -> dict[str, dict[str, float]]:
        """``{name: {mean, sd, q05, q95}}`` of each free parameter (the group value)."""
        return self.estimator.params_

    @property
    def diagnostics(self):
        """The convergence :class:`~ipe.inference.diagnostics.Verdict`."""
        return self.estimator.verdict_

    @property
    def converged(self) -> bool:
        return bool(self.estimator.verdict_.converged)

    @property
    def interval(self) -> str:
        """The kind of interval every output reports."""
        return INTERVAL

    def summary(self, all: bool = False) -> pd.DataFrame:
        """The free parameters, their spreads τ, κ, γ and a position scale's click noise ``motor_sd`` when they
        were sampled (``all``: every sampled quantity), with the :attr:`interval`."""
        table = self.estimator.diagnostics_table_ if all else self.estimator.summary_
        if all:
            return table.copy()
        free = list(self.estimator.model_.free)
        keep = free + [f"tau_{f}" for f in free] + ["k_sims", "link_gamma", "motor_sd"]
        return table[table["parameter"].isin(keep)].reset_index(drop=True)

    def to_arviz(self):
        """The posterior as ArviZ ``InferenceData`` (posterior, log likelihood, posterior predictive, observed)."""
        return self.estimator.idata_

    def criteria(self) -> dict[str, float]:
        return self.estimator.criteria()

    def predict(self, stimuli=None, population: bool = False, n_samples: int = 100, seed: int = 0,
                workers: int = 1, progress: bool | None = None) -> pd.DataFrame:
        """Fresh Monte Carlo predictions at the fitted values (the stimuli fitted, by default).

        ``population=False``: at the group posterior means; ``True``: averaged
        over the fitted participants (as ``ipe predict --params … --population``).
        Parameters that were not free take the emulator's fixed values.
        """
        stim = as_stimulus_set(self.stimuli if stimuli is None else stimuli)
        fixed = dict(getattr(self.emulator, "fixed", None) or {})
        values = {**fixed, **{k: v["mean"] for k, v in self.params.items()}}
        noise = dataclasses.replace(NoiseParams(), **values)
        if population:
            people = self.estimator.participants_[list(self.params)].to_dict("records")
            summary, _ = predict_population(stim, noise, people, n_samples=n_samples, seed=seed, workers=workers,
                                            progress=progress)
            return summary
        return summarize(simulate(stim, noise, n_samples=n_samples, seed=seed, workers=workers, progress=progress))

    def save(self, out_dir, figures: bool = True) -> dict[str, Path]:
        """Write params.json, posterior.nc, diagnostics.csv, convergence.json, participants.csv, ppc.csv,
        emulator.npz and the figures to ``out_dir``."""
        return self.estimator.save(out_dir, figures=figures)


def _deadline_left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _checked_data(responses, stimuli, scale, jspsych: bool, where: str | None, stimuli_label: str | None):
    """``(stimuli, scale, table, subset)``: the stimulus set, the response scale, the checked response table
    and the stimuli it answers; files are read, and the table is checked against the stimuli and the scale."""
    stim = load_stimuli(stimuli) if isinstance(stimuli, (str, Path)) else as_stimulus_set(stimuli)
    if isinstance(scale, str):
        scale = ResponseScale.parse(scale)
    if scale is None:
        scale = scale_for_stimuli(stim)
    if not hasattr(responses, "columns"):
        where = where or str(responses)
        responses = load_jspsych(responses) if jspsych else load_responses(responses)
    table = validate_responses(responses, stimuli=stim, scale=scale, where=where or "responses")
    label = stimuli_label or (f"--stimuli {stimuli}" if isinstance(stimuli, (str, Path)) else "the stimuli")
    check_stimulus_set(table, stim, label, where or "responses",
                       warn=lambda msg: warnings.warn(msg.removeprefix("warning: "), UserWarning, stacklevel=4))
    used = set(table["stimulus_id"])
    return stim, scale, table, stim.subset(used)


def default_free(scale, stimuli) -> tuple[str, ...]:
    """The free noise parameters when none are given: ``sigma, phi`` for judgments; for clicked positions the
    motion noise that suits how the balls start (:func:`ipe.inference.landing.default_free`: ``drop_angle,
    collision_angle`` for balls released at rest, ``launch_angle, collision_angle`` for balls that start moving)."""
    if scale.kind != "position":
        return ("sigma", "phi")
    from .landing import default_free as landing_free

    return landing_free(stimuli)


def _emulator_for(subset, free: list[str], grid, fixed, emulator_samples: int, emulator_store, seed: int,
                  workers: int, backend, scheduler, cache, progress, report,
                  early_stop: bool = True, emulator_se: float | None = None,
                  keep_samples: bool = False) -> tuple[Emulator, Path | None, bool]:
    """``(emulator, path, reused)``: the emulator of ``subset`` on ``grid``, built or the identical stored one
    (``keep_samples``: with every rollout's value, for a position scale's density)."""
    g = {k: list(v) for k, v in grid.items()} if grid else {k: list(DEFAULT_GRID[k]) for k in free}
    emulator = Emulator(grid=g, fixed=fixed, n_samples=emulator_samples, target_se=emulator_se, seed=seed,
                        workers=workers,
                        progress=progress, backend=backend, scheduler=scheduler, cache=cache, early_stop=early_stop,
                        keep_samples=keep_samples)
    if report is not None:
        n_pts = 1
        for v in g.values():
            n_pts *= len(set(v))
        per = (f"{emulator_samples} rollouts" if emulator_se is None else
               f"up to {emulator_samples} rollouts (until se <= {emulator_se:g})")
        report(f"emulator: {len(subset)} stimuli × {n_pts} grid points × {per} (or the identical stored one)")
    return fit_or_load(emulator, subset, emulator_store)


# Over 60 lines only by its docstring, which documents every option; the body is ~40 lines of named steps.
@validate_params(max_time=Optional(SECONDS), early_stop=BOOL, emulator_se=Optional(POSITIVE_NUMBER))
def fit_responses(responses, stimuli, free: Sequence[str] | None = None, scale=None, *,
                  grid: Mapping[str, Sequence[float]] | None = None, ranges=None,
                  fixed: Mapping[str, float] | None = None, emulator: Emulator | None = None,
                  emulator_samples: int = 40, emulator_se: float | None = None, emulator_store=True, seed: int = 0,
                  workers: int = 1,
                  backend: str | None = None, scheduler=None, cache=None, progress: bool | None = None,
                  max_time: float | None = None, early_stop: bool = True, out=None, figures: bool = True, jspsych: bool = False,
                  where: str | None = None, stimuli_label: str | None = None, on_emulator=None, report=None,
                  **fit_options) -> FitResult:
    """Fit the hierarchical IPE to human ``responses`` on ``stimuli`` and return a :class:`FitResult`.

    Parameters
    ----------
    responses:
        A tidy table (participant, stimulus_id, response) or a path to one
        (``jspsych=True``: a jsPsych CSV export).
    stimuli:
        A stimulus set or the path of its JSON file.
    free, scale, grid, ranges, fixed:
        Free noise parameters (``None``: :func:`default_free` of the scale:
        ``sigma, phi``, or for clicked positions the motion noise that suits
        how the balls start); the response scale (text such as
        ``"rating:1-7"``, default from the stimuli's query); the emulator grid
        per free parameter (default :data:`~ipe.inference.emulator.DEFAULT_GRID`);
        prior ranges (default: the grid's range); values of the other noise
        parameters.
    emulator:
        A fitted emulator built for these stimuli, to reuse (for a
        ``position`` scale one that keeps its rollouts,
        ``Emulator(keep_samples=True)``: the likelihood reads the whole
        simulated distribution; the emulator built here does).
    emulator_samples, emulator_se, emulator_store:
        Rollouts per stimulus and grid point (with ``emulator_se``: at most,
        each pair stopping once the standard error of its mean is at most
        ``emulator_se``, see :class:`~ipe.inference.emulator.Emulator`'s
        ``target_se``); where the built emulator is
        stored and looked up (``True``: the simulation cache directory;
        a directory; ``False``: nowhere), see
        :func:`~ipe.inference.emulator.fit_or_load`.
    seed, workers, backend, scheduler, cache, progress:
        As for :func:`ipe.simulate` (``cache``: the simulation cache);
        ``workers`` also runs the NUTS chains that many at once (the draws do
        not depend on it).
    early_stop:
        As for :func:`ipe.simulate`: ``False`` simulates every emulator rollout
        to its horizon, even once every body rests (``ipe fit --no-early-stop``).
    max_time:
        Seconds for the whole call; sampling stops when they run out and the
        fit keeps the draws it has (:class:`~ipe.inference.hierarchical.FitStopped`
        when there are none; the emulator is saved either way).
    out:
        A directory: the emulator is written there as soon as it exists,
        and every output at the end.
    where, stimuli_label:
        How messages name the responses and the stimuli (a file name, an
        option). The responses' recorded stimulus-set fingerprint
        (:mod:`ipe.fingerprint`) must match ``stimuli``; a table that records
        none gives a ``UserWarning``.
    report:
        Called with a status line before each long step (the CLI prints them).
    on_emulator:
        Called as ``on_emulator(emulator, path, reused)`` once the emulator
        is ready (the CLI reports it).
    fit_options:
        Go to :class:`~ipe.inference.HierarchicalFit` (``num_warmup``,
        ``num_samples``, ``num_chains``, ``method``, ``hierarchy``, ``sims``, …).
    """
    started = time.monotonic()
    deadline = started + max_time if max_time is not None else None
    est = HierarchicalFit(free=() if free is None else list(free), ranges=ranges, scale=scale, seed=seed,
                          progress=progress, workers=workers, **fit_options)
    est.check_options()  # before any file is read or emulator built
    stim, scale, table, subset = _checked_data(responses, stimuli, scale, jspsych, where, stimuli_label)
    free = list(default_free(scale, stim) if free is None else free)  # how the stimulus set's balls start
    est.set_params(scale=scale, free=free)
    if emulator is None:  # a prior range beyond the grid is refused before the emulator is built
        g = grid or {k: DEFAULT_GRID[k] for k in free if k in DEFAULT_GRID}
        prior_ranges(free, ranges, SimpleNamespace(grid_values_={k: list(v) for k, v in g.items()}))
    timings = {}
    path, reused = None, False
    if emulator is not None:
        if not emulator.matches(subset):
            raise InputError("emulator: built for other stimuli than those in the responses")
    else:
        t0 = time.monotonic()
        emulator, path, reused = _emulator_for(subset, free, grid, fixed, emulator_samples, emulator_store, seed,
                                               workers, backend, scheduler, cache, progress, report, early_stop,
                                               emulator_se, keep_samples=scale.kind == "position")
        timings["emulator_s"] = time.monotonic() - t0
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
        emulator.save(Path(out) / "emulator.npz")  # saved the moment it exists: a stopped fit keeps it
    if on_emulator is not None:
        on_emulator(emulator, path, reused)
    left = _deadline_left(deadline)
    if left is not None and left <= 0:
        raise FitStopped(f"stopped by max_time={max_time:g} s after the emulator, before sampling"
                         + (f"; the emulator is saved in {out}" if out is not None else ""))
    est.set_params(max_time=left)
    t0 = time.monotonic()
    est.fit(table, emulator)
    timings["sampling_s"] = time.monotonic() - t0
    result = FitResult(estimator=est, emulator=emulator, stimuli=subset, responses=table, emulator_path=path,
                       emulator_reused=reused, timings=timings)
    if out is not None:
        result.save(out, figures=figures)
    return result


__all__ = ["FitResult", "default_free", "fit_responses"]
