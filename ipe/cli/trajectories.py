"""Commands for trajectories: ``ipe stimuli plinko``, ``ipe plot trajectories``, ``ipe fit-landing``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from . import app, stimuli_app
from .common import ProgressOption, SeedOption, WorkersOption, check_out, check_out_dir, note

plot_app = typer.Typer(help="Figures of simulations.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(plot_app, name="plot")


def _noise(sigma: float, launch_angle: float, launch_speed: float, launch_position: float, collision_angle: float,
           collision_speed: float, step_angle: float, obstacle_position: float, obstacle_angle: float,
           drop_angle: float = 0.0, collision_speed_loss: float = 0.0, collision_speed_sd: float = 0.0):
    from ..noise import NoiseParams

    values = dict(sigma=sigma, launch_angle=launch_angle, launch_speed=launch_speed,
                  launch_position=launch_position, collision_angle=collision_angle,
                  collision_speed=collision_speed, step_angle=step_angle, obstacle_position=obstacle_position,
                  obstacle_angle=obstacle_angle, drop_angle=drop_angle, collision_speed_loss=collision_speed_loss,
                  collision_speed_sd=collision_speed_sd)
    for name, v in values.items():
        if not v >= 0 or v != v or v == float("inf"):
            raise InputError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {v}")
    return NoiseParams(**values)


@stimuli_app.command("plinko")
def stimuli_plinko(
    out: Annotated[Path, typer.Option("--out", "-o", help="Stimulus-set JSON file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of stimuli.")] = 12,
    seed: SeedOption = 0,
    obstacles: Annotated[int, typer.Option("--obstacles", min=1, max=6, help="Polygon obstacles per world.")] = 3,
) -> None:
    """Generate Plinko worlds (pixel units): a ball drops through a hole in a box's lid among polygon obstacles."""
    from ..scenefile import save_stimuli
    from ..stimuli.plinko import PlinkoOptions, generate_plinko

    check_out(out)
    stimuli = generate_plinko(n, seed=seed, options=PlinkoOptions(n_obstacles=obstacles))
    save_stimuli(stimuli, out, name=stimuli.name)
    note(f"wrote {len(stimuli)} Plinko stimuli to {out}")


@plot_app.command("trajectories")
def plot_trajectories_cmd(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for <id>.png, paths.csv, landings.csv, "
                                                          "landing_summary.csv.")],
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Noisy rollouts per stimulus.")] = 50,
    seed: SeedOption = 0,
    every: Annotated[Optional[int], typer.Option("--every", min=1, help="Record one pose every this many "
                                                                        "physics steps (default: one per frame).")] = None,
    query: Annotated[Optional[str], typer.Option("--query", help="Landing query, e.g. "
                                                                 "landing_x:body=ball,target=ground.")] = None,
    body: Annotated[Optional[str], typer.Option("--body", help="Body whose path is drawn (default: the first ball).")] = None,
    sigma: Annotated[float, typer.Option("--sigma", help="Perceptual position noise σ (short sides).")] = 0.0,
    launch_angle: Annotated[float, typer.Option("--launch-angle", help="Launch direction noise (rad).")] = 0.0,
    launch_speed: Annotated[float, typer.Option("--launch-speed", help="Launch speed noise (log units).")] = 0.0,
    launch_position: Annotated[float, typer.Option("--launch-position", help="Launch position noise (short sides).")] = 0.0,
    collision_angle: Annotated[float, typer.Option("--collision-angle", help="Collision direction noise (rad).")] = 0.0,
    collision_speed: Annotated[float, typer.Option("--collision-speed", help="Collision speed noise (log units).")] = 0.0,
    step_angle: Annotated[float, typer.Option("--step-angle", help="Per-step direction noise (rad/sqrt(s)).")] = 0.0,
    obstacle_position: Annotated[float, typer.Option("--obstacle-position", help="Obstacle position noise (short sides).")] = 0.0,
    obstacle_angle: Annotated[float, typer.Option("--obstacle-angle", help="Obstacle rotation noise (rad).")] = 0.0,
    drop_angle: Annotated[float, typer.Option("--drop-angle", help="Drop noise: turn of a ball released at rest, "
                                                                   "one diameter after release (rad).")] = 0.0,
    collision_speed_loss: Annotated[float, typer.Option("--collision-speed-loss", help="Mean fraction of speed lost "
                                                        "per collision (speed factor ~ Normal(1 - loss, sd) "
                                                        "truncated at 0).")] = 0.0,
    collision_speed_sd: Annotated[float, typer.Option("--collision-speed-sd", help="S.d. of that speed factor.")] = 0.0,
    no_early_stop: Annotated[bool, typer.Option("--no-early-stop", help="Record every rollout to its horizon, "
                                                                        "even once every body rests.")] = False,
    progress: ProgressOption = None,
) -> None:
    """Trajectory fans (noise-free path on top) and landing densities, one PNG per stimulus."""
    from ..fileio import write_csv
    from ..scenefile import load_stimuli
    from ..trajectories import landing_summary, plot_trajectories, record_paths

    check_out_dir(out)
    params = _noise(sigma, launch_angle, launch_speed, launch_position, collision_angle, collision_speed,
                    step_angle, obstacle_position, obstacle_angle, drop_angle, collision_speed_loss,
                    collision_speed_sd)
    stim = load_stimuli(stimuli)
    if body is not None:
        for s in stim:
            if body not in s.scene.body_ids:
                raise InputError(f"--body {body!r}: stimulus {s.id!r} has no such body")
    paths, landings = record_paths(stim, params, n_samples=samples, seed=seed, every=every, query=query,
                                   progress=progress, early_stop=not no_early_stop)
    out.mkdir(parents=True, exist_ok=True)
    pngs = plot_trajectories(stim, paths, landings, out, body=body)
    write_csv(out / "paths.csv", paths)
    write_csv(out / "landings.csv", landings)
    summary = landing_summary(landings)
    write_csv(out / "landing_summary.csv", summary)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    note(f"wrote {len(pngs)} figures, paths.csv, landings.csv and landing_summary.csv to {out}")


@app.command("fit-landing")
def fit_landing(
    responses: Annotated[Path, typer.Argument(help="Clicked landing positions (.csv): participant, stimulus_id, "
                                                   "response; with --means: stimulus_id, mean and, when known, n.")],
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file (landing queries).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for summary.csv and params.json.")],
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
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed (simulations and NUTS).")] = 0,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
) -> None:
    """Fit motion-noise parameters to clicked landing x (likelihood: the simulated landing distribution, by KDE)."""
    import numpy as np

    from ..fileio import read_csv
    from ..inference.landing import LandingEmulator, LandingFit
    from ..noise import NoiseParams
    from ..scenefile import load_stimuli

    check_out_dir(out)
    if likelihood not in ("kde", "gaussian"):
        raise InputError(f"--likelihood {likelihood!r}: expected kde or gaussian")
    names = [] if free is None else [f.strip() for f in free.split(",") if f.strip()]
    bad = [f for f in names if f not in NoiseParams.names() or f == "push_duration"]
    if free is not None and (not names or bad or len(set(names)) != len(names)):
        raise InputError(f"--free {free!r}: expected distinct noise parameters, e.g. drop_angle,collision_angle")
    if not grid_max > 0:
        raise InputError(f"--grid-max must be > 0, got {grid_max}")
    stim = load_stimuli(stimuli)
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
    used = set(table["stimulus_id"])
    subset = stim.subset(used)
    from ..trajectories import landing_query

    for s in subset:  # towers and other scenes without a landing query are refused before any rollout
        landing_query(s)
    import pandas as pd

    for col in ((("mean", "n") if "n" in table.columns else ("mean",)) if means else ("response",)):
        v = pd.to_numeric(table[col], errors="coerce")
        ok = v.abs().lt(float("inf")) & (v.gt(0) if col == "n" else True)
        if not ok.all():
            i = table.index[~ok][0]
            raise InputError(f"{responses}: row {i + 2}: {col} {table.loc[i, col]!r} is not "
                             f"{'a positive number' if col == 'n' else 'a finite number'}")
    if not names:
        from ..inference.landing import default_free

        names = list(default_free(subset))
        note(f"free parameters: {', '.join(names)} (the balls' start; --free to choose)")
    grid = {n: list(np.round(np.linspace(0.0, grid_max, grid_points), 6)) for n in names}
    note(f"emulator: {len(subset)} stimuli × {grid_points ** len(names)} grid points × {emulator_samples} rollouts")
    emu = LandingEmulator(grid=grid, n_samples=emulator_samples, seed=seed, workers=workers,
                          progress=progress, early_stop=not no_early_stop).fit(subset)
    if means and "n" not in table.columns:
        note(f"no n column: every mean counts as {n_default} clicks (--n)")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # its convergence problems are printed below
        est = LandingFit(free=names, samples_per_judgment=samples_per_judgment, num_warmup=warmup,
                         num_samples=draws, num_chains=chains, seed=seed, progress=progress, likelihood=likelihood,
                         default_n=n_default).fit(table, emu, means=means)
    paths = est.save(out)
    print(est.summary_.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for msg in est.problems_:
        note(f"warning: {msg}")
    note(f"divergences: {est.n_divergent_}; wrote {', '.join(p.name for p in paths.values())} to {out}")
