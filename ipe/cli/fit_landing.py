"""``ipe fit-landing``: motion-noise parameters fitted to clicked landing positions."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..noise import NoiseParams
from ..validation import POSITIVE_NUMBER, OneOf, check
from .app import app
from .common import ProgressOption, WorkersOption, check_out_dir, note
from .fit import MaxTimeOption, parse_max_time, report_mc_sd, report_verdict

#: ``--likelihood``: the whole simulated landing distribution (by KDE), or its mean and sd.
LIKELIHOODS = OneOf("kde", "gaussian", description="kde or gaussian")


# Over 60 lines only because typer reads the command's 20 options from its signature (the body is 30 lines).
@app.command("fit-landing")
def fit_landing(
    responses: Annotated[Path, typer.Argument(help="Clicked landing positions (.csv): participant, stimulus_id, "
                                                   "response; with --means: stimulus_id, mean and, when known, n.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file (landing queries).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for summary.csv, params.json, draws.csv, convergence.json "
                                                   "and emulator.npz.")],
    free: Annotated[Optional[str], typer.Option("--free", help="Free noise parameters, comma-separated; default "
                                                "drop_angle,collision_angle for balls released at rest, "
                                                "launch_angle,collision_angle for balls that start moving.")] = None,
    means: Annotated[bool, typer.Option("--means", help="RESPONSES holds per-stimulus means (and counts n).")] = False,
    n_default: Annotated[int, typer.Option("--n", min=1, help="With --means and no n column: clicks behind each "
                                                              "mean (τ scales with sqrt(n); see "
                                                              "docs/trajectories.md).")] = 20,
    likelihood: Annotated[str, typer.Option("--likelihood", help="kde: the whole simulated landing distribution "
                                            "(default); gaussian: its mean and sd only.")] = "kde",
    no_early_stop: Annotated[bool, typer.Option("--no-early-stop", help="Simulate every rollout to its horizon "
                                                "(never changes a landing; slower).")] = False,
    grid_max: Annotated[float, typer.Option("--grid-max", help="Upper end of every free parameter's grid.")] = 0.6,
    grid_points: Annotated[int, typer.Option("--grid-points", min=3, help="Grid values per parameter.")] = 6,
    samples_per_judgment: Annotated[int, typer.Option("--k", min=1, help="Simulations behind each judgment.")] = 1,
    emulator_samples: Annotated[int, typer.Option("--emulator-samples", min=2, help="Rollouts per stimulus and "
                                                                                     "grid point.")] = 40,
    warmup: Annotated[int, typer.Option("--warmup", min=1, help="NUTS warm-up steps per chain.")] = 300,
    draws: Annotated[int, typer.Option("--draws", min=1, help="NUTS draws per chain.")] = 300,
    chains: Annotated[int, typer.Option("--chains", min=1, help="Chains (one after another).")] = 2,
    emulator_bootstrap: Annotated[int, typer.Option("--emulator-bootstrap", min=0, help="Carry the emulator's "
                                                    "Monte Carlo error into the intervals: pool the fits on this many "
                                                    "bootstrap replicates of its rollouts (costs that many fits; "
                                                    "0: one fit, its error only measured).")] = 0,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (simulations and NUTS).")] = 0,
    max_time: MaxTimeOption = None,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
) -> None:
    """Fit motion-noise parameters to clicked landing x (likelihood: the simulated landing distribution, by KDE)."""
    from ..scenefile import load_stimuli
    from ..trajectories import landing_query

    started = time.monotonic()
    check_out_dir(out)
    limit = parse_max_time(max_time)
    check("--likelihood", likelihood, LIKELIHOODS)
    if emulator_bootstrap and likelihood != "kde":
        raise InputError("--emulator-bootstrap needs --likelihood kde (it resamples the simulated landings)")
    names = _free_names(free)
    check("--grid-max", grid_max, POSITIVE_NUMBER)
    stim = load_stimuli(stimuli)
    table = _read_clicks(responses, stimuli, stim, means)
    used = set(table["stimulus_id"])
    subset = stim.subset(used)
    for s in subset:  # towers and other scenes without a landing query are refused before any rollout
        landing_query(s)
    _check_numbers(table, responses, means)
    if not names:
        from ..inference.landing import default_free

        names = list(default_free(subset))
        note(f"free parameters: {', '.join(names)} (the balls' start; --free to choose)")
    progress = progress if progress is not None else True  # a bar in a terminal, plain lines elsewhere
    emu = _landing_emulator(subset, names, grid_max, grid_points, emulator_samples, seed, workers, progress,
                            no_early_stop)
    out.mkdir(parents=True, exist_ok=True)
    emu.save(out / "emulator.npz")  # saved the moment it exists: a stopped fit keeps it
    if means and "n" not in table.columns:
        note(f"no n column: every mean counts as {n_default} clicks (--n)")
    left = None if limit is None else limit - (time.monotonic() - started)
    if left is not None and left <= 0:
        note(f"stopped by --max-time {max_time} after the emulator, before sampling: only the emulator is saved "
             f"({out / 'emulator.npz'}; a rerun reuses the stored copy)")
        raise typer.Exit(1)
    note(f"NUTS: {chains} chain(s) × ({warmup} warm-up + {draws} draws)"
         + (f" on each of {emulator_bootstrap} bootstrap replicates of the emulator, pooled" if emulator_bootstrap
            else ""))
    est = _fit(table, emu, means, dict(free=names, samples_per_judgment=samples_per_judgment, num_warmup=warmup,
                                       num_samples=draws, num_chains=chains, seed=seed, progress=progress,
                                       likelihood=likelihood, default_n=n_default, max_time=left,
                                       emulator_bootstrap=emulator_bootstrap))
    paths = est.save(out)
    _print_fit(est, max_time)
    note(f"divergences: {est.n_divergent_}; wrote {', '.join(p.name for p in paths.values())} to {out}")


def _fit(table, emu, means: bool, options: dict):
    """:class:`LandingFit` on the table; the verdict is printed by the caller, a fit stopped before its first
    draw exits with status 1."""
    from ..inference.hierarchical import FitStopped
    from ..inference.landing import LandingFit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the convergence verdict is printed after the table
        try:
            return LandingFit(**options).fit(table, emu, means=means)
        except FitStopped as exc:
            note(f"{exc}; rerun with a longer --max-time")
            raise typer.Exit(1) from None


def _print_fit(est, max_time: str | None) -> None:
    """The posterior summary, what its interval is, whether --max-time cut it short, and the verdict."""
    from ..inference.posterior import INTERVAL

    print(est.summary_.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"(q05, q95: the {INTERVAL})")
    if est.mc_sd_:
        report_mc_sd(est.mc_sd_, pooled=bool(est.mc_between_))
    if est.mc_between_:
        note("emulator's share of each pooled posterior's variance (between the bootstrap replicates): "
             + ", ".join(f"{k} {v:.0%}" for k, v in est.mc_between_.items()))
    if est.stopped_early_:
        note(f"stopped by --max-time {max_time} after {est.diverging_.shape[1]} draws per chain; "
             "what was drawn is saved")
    report_verdict(est.verdict_)


def _free_names(free: str | None) -> list[str]:
    """``--free``: distinct noise parameters (not push_duration); ``[]`` when not given."""
    names = [] if free is None else [f.strip() for f in free.split(",") if f.strip()]
    bad = [f for f in names if f not in NoiseParams.names() or f == "push_duration"]
    if free is not None and (not names or bad or len(set(names)) != len(names)):
        raise InputError(f"--free {free!r}: expected distinct noise parameters, e.g. drop_angle,collision_angle")
    return names


def _read_clicks(responses: Path, stimuli: Path, stim, means: bool):
    """The clicks (or per-stimulus means) table, with the columns it needs and only known stimulus ids."""
    from ..fileio import read_csv

    table = read_csv(responses, what="responses CSV")
    need = ("stimulus_id", "mean") if means else ("participant", "stimulus_id", "response")
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise InputError(f"{responses}: missing column(s) {', '.join(missing)} (need {', '.join(need)}"
                         f"{'' if means else '; per-stimulus means need --means'})")
    table["stimulus_id"] = table["stimulus_id"].astype(str)
    unknown = sorted(set(table["stimulus_id"]) - set(stim.ids))
    if unknown:
        raise InputError(f"{responses}: stimulus id {unknown[0]!r} is not in {stimuli}")
    return table


def _check_numbers(table, responses: Path, means: bool) -> None:
    """Every click (or mean) a finite number, every count n a positive one; the first bad row is named."""
    import pandas as pd

    for col in ((("mean", "n") if "n" in table.columns else ("mean",)) if means else ("response",)):
        v = pd.to_numeric(table[col], errors="coerce")
        ok = v.abs().lt(float("inf")) & (v.gt(0) if col == "n" else True)
        if not ok.all():
            i = table.index[~ok][0]
            raise InputError(f"{responses}: row {i + 2}: {col} {table.loc[i, col]!r} is not "
                             f"{'a positive number' if col == 'n' else 'a finite number'}")


def _landing_emulator(subset, names: list[str], grid_max: float, grid_points: int, emulator_samples: int, seed: int,
                      workers: int, progress, no_early_stop: bool):
    """The landing emulator on a grid of ``grid_points`` values from 0 to ``grid_max`` per free parameter."""
    import numpy as np

    from ..inference.landing import LandingEmulator, landing_fit_or_load

    grid = {n: list(np.round(np.linspace(0.0, grid_max, grid_points), 6)) for n in names}
    size = f"{len(subset)} stimuli × {grid_points ** len(names)} grid points × {emulator_samples} rollouts"
    emu, path, reused = landing_fit_or_load(LandingEmulator(grid=grid, n_samples=emulator_samples, seed=seed,
                                                            workers=workers, progress=progress,
                                                            early_stop=not no_early_stop), subset)
    if reused:
        note(f"emulator: reused {path} ({size})")
    else:
        note(f"emulator: built, {size}" + (f" (stored as {path})" if path is not None else ""))
    return emu
