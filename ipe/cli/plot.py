"""``ipe plot trajectories``: figures of simulations (trajectory fans and landing densities)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from .app import group
from .common import ProgressOption, SeedOption, check_out_dir, note
from .noise import noise_point

plot_app = group("plot", "Figures of simulations.")


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
    params = noise_point(sigma=sigma, launch_angle=launch_angle, launch_speed=launch_speed,
                         launch_position=launch_position, collision_angle=collision_angle,
                         collision_speed=collision_speed, step_angle=step_angle,
                         obstacle_position=obstacle_position, obstacle_angle=obstacle_angle, drop_angle=drop_angle,
                         collision_speed_loss=collision_speed_loss, collision_speed_sd=collision_speed_sd)
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
