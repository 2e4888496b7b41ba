"""``ipe sweep``: every stimulus at every point of a grid of noise parameters, scored against people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..fileio import MissingExtra, optional_import
from ..validation import POSITIVE_NUMBER, check
from .app import app
from .backend import BackendOption, CacheDirOption, CacheOption, SchedulerOption, cache_note, run_options
from .common import NoEarlyStopOption, ProgressOption, SeedOption, WorkersOption, check_out, note


def parse_grid_specs(specs: list[str] | None) -> dict[str, str]:
    """``["sigma=0:0.5:11", "phi=0,0.1"]`` → ``{"sigma": "0:0.5:11", "phi": "0,0.1"}`` (order kept)."""
    from ..sweep import GRID_SPEC

    if not specs:
        raise InputError("give the grid with --grid NAME=VALUES, e.g. --grid sigma=0:0.5:11 --grid phi=0:0.3:16")
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not values.strip():
            raise InputError(f"--grid {spec!r}: expected NAME={GRID_SPEC.split(' (')[0]}, e.g. sigma=0:0.5:11")
        if name in out:
            raise InputError(f"--grid {spec!r}: {name} is given twice")
        out[name] = values
    return out


# Over 60 lines only because typer reads the command's 21 options from its signature (the body is 44 lines).
@app.command("sweep")
def sweep(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="CSV to write: one row per grid point × stimulus × query (mean, sd, se and the "
                            "noise parameters).")],
    grid: Annotated[Optional[list[str]], typer.Option(
        "--grid", "-g", help="One grid axis, NAME=V1,V2,... or NAME=START:STOP:N (N evenly spaced values, ends "
                             "included); NAME is any noise parameter (sigma, phi, mu, angle_sigma, friction, …). "
                             "Repeatable: the grid is every combination, the first axis varying slowest.")] = None,
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Rollouts per stimulus and point.")] = 48,
    target_se: Annotated[Optional[float], typer.Option(
        "--target-se", help="Adaptive: rollouts in rounds until every query's standard error is at most this, "
                            "--samples at most per stimulus and point (see ipe.adaptive).")] = None,
    seed: SeedOption = 0,
    workers: WorkersOption = 1,
    query: Annotated[Optional[list[str]], typer.Option(
        "--query", "-q", help="Query to answer (repeatable); default: each stimulus's own query.")] = None,
    rollouts: Annotated[Optional[Path], typer.Option(
        "--rollouts", help="Also write the per-rollout table (Parquet for .parquet, else CSV).")] = None,
    humans: Annotated[Optional[Path], typer.Option(
        "--humans", help="Response table (participant, stimulus_id, response): score every point against "
                         "people (r and RMSE of the per-stimulus means) and report the best.")] = None,
    jspsych: Annotated[bool, typer.Option("--jspsych", help="--humans is a jsPsych CSV export.")] = False,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", help="Response scale of --humans, e.g. rating:1-7 (default: from the stimuli's query).")] = None,
    scores: Annotated[Optional[Path], typer.Option(
        "--scores", help="Per-point CSV: model mean and, with --humans, r, RMSE, rank and best "
                         "(default with --humans: <out>.scores.csv).")] = None,
    figure: Annotated[Optional[Path], typer.Option(
        "--figure", help="Figure of the sweep (PNG, PDF or SVG by suffix): a heat map of r (or of the mean "
                         "judgment without --humans) over two varying parameters, a line over one.")] = None,
    crn: Annotated[bool, typer.Option(
        "--common-random-numbers", help="The same seeds at every point (sample i sees the same noise draws, "
                                        "scaled by each point's parameters): smoother score surfaces, "
                                        "correlated points.")] = False,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
    backend: BackendOption = None,
    scheduler: SchedulerOption = None,
    cache: CacheOption = True,
    cache_dir: CacheDirOption = None,
) -> None:
    """Sweep a grid of noise parameters (BHT's 11 σ × 16 φ, or any other) and score it against people.

    Unlike predict and fit, a sweep uses the simulation cache by default: every finished (stimulus, point)
    is stored as it completes, so an interrupted sweep picks up where it stopped and a rerun (a new
    --humans table, another figure) simulates nothing. --no-cache turns that off. The cache needs the
    parquet extra (pip install "ipe[parquet]"); without it the sweep runs uncached and says so.

    Example: ipe sweep towers.json --grid sigma=0:0.5:11 --grid phi=0:0.3:16 --humans responses.csv
    --out sweep.csv --figure sweep.png --backend dask --workers 2
    """
    from ..montecarlo import simulate, summarize
    from ..scenefile import load_stimuli
    from ..sweep import grid as make_grid

    # everything that can be wrong with the input is checked before the first rollout
    check_out(out)
    if target_se is not None:
        check("--target-se", target_se, POSITIVE_NUMBER)
    points = make_grid(parse_grid_specs(grid))
    if humans is None and (jspsych or scale is not None):
        raise InputError("--jspsych and --scale need --humans")
    if scores is None and humans is not None:
        scores = out.with_name(out.stem + ".scores.csv")
    _check_outputs(out, rollouts, scores, figure)
    if rollouts is not None and rollouts.suffix.lower() == ".parquet":
        optional_import("pyarrow", f"--rollouts {rollouts}: writing Parquet")
    if cache and cache_dir is None:  # the default cache is left out, with a note, when its extra is missing
        try:
            optional_import("pyarrow", "the simulation cache")
        except MissingExtra as exc:
            note(f"sweep: no simulation cache: {exc}")
            cache = False
    run_opts = run_options(workers, backend, scheduler, cache, cache_dir)
    stim = load_stimuli(stimuli)
    people, sc = _people(humans, jspsych, scale, stim)
    if figure is not None:
        _check_figure_axes(points)

    total = len(points) * len(stim) * samples
    note(f"sweep: {len(points)} points × {len(stim)} stimuli × {samples} rollouts = {total:,} rollouts"
         + (f" at most (until se ≤ {target_se:g})" if target_se is not None else ""))
    table = simulate(stim, points, n_samples=samples, seed=seed, queries=query or None,
                     early_stop=not no_early_stop, progress=progress, common_random_numbers=crn,
                     target_se=target_se, **run_opts)
    cache_note(run_opts)
    summary = summarize(table)
    _write_tables(summary, table, out, rollouts)
    if target_se is not None:
        used = table.drop_duplicates([*points[0].as_dict(), "stimulus_id", "sample"]).shape[0]
        note(f"--target-se {target_se:g}: {used:,} of at most {total:,} rollouts used")
    note(f"wrote {len(summary)} rows ({len(points)} points × {len(stim)} stimuli) to {out}")
    if scores is not None or figure is not None:
        _score(summary, stim, people, sc, scores, figure)


def _check_outputs(out: Path, rollouts: Path | None, scores: Path | None, figure: Path | None) -> None:
    """Every output a file path, no two the same file, the figure of a format matplotlib writes."""
    outputs = {"--out": out}
    for what, path in (("--rollouts", rollouts), ("--scores", scores), ("--figure", figure)):
        if path is None:
            continue
        check_out(path, what)
        clash = [w for w, p in outputs.items() if p.resolve() == path.resolve()]
        if clash:
            raise InputError(f"{what} {path}: the same file as {clash[0]}")
        outputs[what] = path
    if figure is not None and figure.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise InputError(f"--figure {figure}: expected a .png, .pdf or .svg file")


def _people(humans: Path | None, jspsych: bool, scale: str | None, stim):
    """``--humans``: the response table, checked against the stimuli, and its scale; ``(None, None)`` without."""
    if humans is None:
        return None, None
    from ..humans import ResponseScale, load_jspsych, load_responses, scale_for_stimuli, validate_responses

    sc = ResponseScale.parse(scale) if scale else scale_for_stimuli(stim)
    people = load_jspsych(humans) if jspsych else load_responses(humans)
    return validate_responses(people, stimuli=stim, scale=sc, where=str(humans)), sc


def _check_figure_axes(points) -> None:
    """A figure shows one or two varying parameters."""
    import pandas as pd

    from ..sweep import varying_parameters

    n_vary = len(varying_parameters(pd.DataFrame([p.as_dict() for p in points])))
    if not 1 <= n_vary <= 2:
        raise InputError(f"--figure: the grid varies {n_vary} parameters; a figure shows one or two")


def _write_tables(summary, table, out: Path, rollouts: Path | None) -> None:
    """The per-point summary as CSV; the per-rollout table as Parquet (for .parquet) or CSV."""
    from ..fileio import atomic_write, write_csv

    write_csv(out, summary)
    if rollouts is None:
        return
    if rollouts.suffix.lower() == ".parquet":
        atomic_write(rollouts, lambda fh: table.to_parquet(fh, index=False), mode="wb")
    else:
        write_csv(rollouts, table)


def _score(summary, stim, people, sc, scores: Path | None, figure: Path | None) -> None:
    """Per-point scores (against people, with --humans), the figure, and the best points on stdout."""
    from ..fileio import write_csv
    from ..sweep import plot_sweep, score_sweep

    per_point = score_sweep(summary, stim, people, scale=sc)
    if scores is not None:
        write_csv(scores, per_point)
        note(f"wrote {len(per_point)} per-point scores to {scores}")
    if figure is not None:
        plot_sweep(per_point, figure)
        note(f"wrote the figure {figure}")
    if people is not None:
        _print_best(per_point, people)


def _print_best(per_point, people) -> None:
    """The five best points on stdout, and the noise ceiling they are to be read against."""
    import math

    from ..metrics import format_ceiling, split_half_ceiling
    from ..sweep import varying_parameters

    shown = varying_parameters(per_point) or ["sigma"]
    top = per_point.sort_values("rank").head(5)
    print("rank  " + "  ".join(f"{p:>8}" for p in shown) + "       r    rmse")
    for _, row in top.iterrows():
        r = "     nan" if not math.isfinite(row["r"]) else f"{row['r']:8.3f}"
        print(f"{int(row['rank']):>4}  " + "  ".join(f"{row[p]:8.4g}" for p in shown) + f"{r}  {row['rmse']:6.3f}")
    if people["participant"].nunique() >= 2:
        print(format_ceiling(split_half_ceiling(people)))
