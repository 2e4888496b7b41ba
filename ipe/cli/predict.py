"""``ipe predict``: Monte Carlo judgments of every stimulus, one CSV row per stimulus and query."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..noise import NoiseParams
from ..validation import POSITIVE_NUMBER, check
from .app import app
from .backend import BackendOption, CacheDirOption, CacheOption, SchedulerOption, cache_note, run_options
from .common import NoEarlyStopOption, ProgressOption, SeedOption, WorkersOption, check_out, note
from .noise import NOISE_RULE, check_noise, option_name, parse_noise_options


# Over 60 lines only because typer reads the command's 23 options from its signature (the body is 29 lines).
@app.command("predict")
def predict(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Per-stimulus CSV to write.")],
    sigma: Annotated[Optional[float], typer.Option(
        "--sigma", help="Perceptual noise σ (block short sides); default 0.")] = None,
    phi: Annotated[Optional[float], typer.Option(
        "--phi", help="Force noise φ (fraction of weight, first 200 ms); default 0.")] = None,
    mu: Annotated[Optional[float], typer.Option(
        "--mu", help="Mass noise μ (s.d. of the log density ratio); default 0.")] = None,
    friction: Annotated[Optional[float], typer.Option(
        "--friction", help="Friction uncertainty (s.d. of the log friction factor); default 0.")] = None,
    removal_impulse: Annotated[Optional[float], typer.Option(
        "--removal-impulse", help="Removal noise: Gamma shape of the kick to what rested on a removed body "
                                  "(Mental Jenga's impulse noise); default 0.")] = None,
    noise_values: Annotated[Optional[list[str]], typer.Option(
        "--noise", help="Any other noise parameter, NAME=VALUE (repeatable): push_duration, launch_angle, "
                        "launch_speed, launch_position, collision_angle, collision_speed, step_angle, "
                        "obstacle_position, obstacle_angle (see docs/trajectories.md).")] = None,
    params: Annotated[Optional[Path], typer.Option(
        "--params", help="params.json from `ipe fit`: use the fitted group means (posterior means).")] = None,
    population: Annotated[bool, typer.Option(
        "--population", help="With --params: simulate every fitted participant (participants.csv beside "
                             "params.json) and average them, the fitted population's mean judgment; each "
                             "participant gets ceil(samples / participants) rollouts.")] = False,
    angle_sigma: Annotated[float, typer.Option("--angle-sigma", help="Perceptual angle noise (rad).")] = 0.0,
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Rollouts per stimulus.")] = 100,
    target_se: Annotated[Optional[float], typer.Option(
        "--target-se", help="Adaptive: rollouts in rounds until every query's standard error is at most this, "
                            "--samples at most (see ipe.adaptive).")] = None,
    seed: SeedOption = 0,
    workers: WorkersOption = 1,
    query: Annotated[Optional[list[str]], typer.Option(
        "--query", "-q", help="Query to answer, e.g. fall or body_falls:body=b3 (repeatable); "
                              "default: each stimulus's own query.")] = None,
    rollouts: Annotated[Optional[Path], typer.Option(
        "--rollouts", help="Also write the per-rollout table to this CSV.")] = None,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
    backend: BackendOption = None,
    scheduler: SchedulerOption = None,
    cache: CacheOption = False,
    cache_dir: CacheDirOption = None,
) -> None:
    """Predict judgments: a CSV with stimulus_id, query, n_samples, mean, sd, se."""
    from ..fileio import write_csv
    from ..montecarlo import predict_population, simulate, summarize
    from ..scenefile import load_stimuli

    check_out(out)
    if rollouts is not None:
        check_out(rollouts, "--rollouts")
    if target_se is not None:
        check("--target-se", target_se, POSITIVE_NUMBER)
        if population:
            raise InputError("--target-se and --population cannot be combined (the population gives every "
                             "participant the same number of rollouts)")
    run_opts = run_options(workers, backend, scheduler, cache, cache_dir)
    flags = {"sigma": sigma, "phi": phi, "mu": mu, "friction": friction, "removal_impulse": removal_impulse}
    noise, people = noise_from_options(flags, angle_sigma, noise_values, params, population)
    stim = load_stimuli(stimuli)
    common = dict(n_samples=samples, seed=seed, queries=query or None, early_stop=not no_early_stop,
                  progress=progress, **run_opts)
    if people is not None:
        summary, table = predict_population(stim, noise, people, **common)
    else:
        table = simulate(stim, noise, target_se=target_se, **common)
        summary = summarize(table)
    cache_note(run_opts)
    write_csv(out, summary)
    if rollouts is not None:
        write_csv(rollouts, table)
    note(f"wrote predictions for {len(stim)} stimuli to {out}")


def noise_from_options(flags: dict[str, float | None], angle_sigma: float, specs: list[str] | None,
                       params: Path | None, population: bool) -> tuple[NoiseParams, list[dict] | None]:
    """The noise point of ``--sigma``…, ``--noise NAME=VALUE`` and ``--params``, and with ``--population`` the
    fitted participants (``None`` without).

    A parameter may be given one way only. Every value is checked with the
    noise rule under the name of the option (or file) it came from.
    """
    values = dict(flags)
    labels: dict[str, str] = {}
    for name, v in parse_noise_options(specs).items():
        if values.get(name) is not None or (name == "angle_sigma" and angle_sigma):
            raise InputError(f"--noise {name}=…: {name} is also given as {option_name(name)}")
        values[name] = v
        labels[name] = f"--noise {name}"
    people = None
    if params is not None:
        fitted, people = _fitted(params, values, population)
        values.update(fitted)
        labels.update({name: f"--params {params}: {name}" for name in fitted})
    elif population:
        raise InputError("--population needs --params (the population is the participants of a fit)")
    checked = check_noise({k: (0.0 if v is None else v) for k, v in values.items()}, labels)
    angle = checked.pop("angle_sigma", check("--angle-sigma", angle_sigma, NOISE_RULE))
    return NoiseParams(angle_sigma=angle, **checked), people


def _fitted(params: Path, values: dict[str, float | None], population: bool) -> tuple[dict[str, float], list | None]:
    """The fitted group means of ``params`` (none of them also given as an option), and the participants."""
    from ..inference.fitfiles import load_params, load_population

    fitted = load_params(params)
    clash = [k for k in fitted if values.get(k) is not None]
    if clash:
        raise InputError(f"--params {params} sets {', '.join(clash)}; do not also give --{clash[0]}")
    people = None
    if population:
        people = load_population(params).drop(columns="participant", errors="ignore").to_dict("records")
    note("using fitted values " + ", ".join(f"{k}={v:.4g}" for k, v in fitted.items())
         + (f", averaged over {len(people)} fitted participants" if population else ""))
    return fitted, people
