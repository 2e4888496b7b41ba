"""The ``ipe`` command line.

Every command has ``--help``. Bad input (a malformed file, an impossible
scene, an unknown option value) prints one line, ``ipe: error: …``, on stderr
and exits with status 2; no traceback is shown (set ``IPE_DEBUG=1`` to see
one).
"""

from __future__ import annotations

import dataclasses

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import click
import typer

from ..errors import InputError

# typer >= 0.20 vendors its own copy of click (typer._click); older typer uses click itself.
try:  # pragma: no cover - depends on the installed typer
    from typer._click.exceptions import ClickException as _VendoredClickException
except ImportError:  # pragma: no cover
    _VendoredClickException = click.ClickException
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_USAGE = (click.ClickException, _VendoredClickException)

app = typer.Typer(
    name="ipe",
    help="The intuitive physics engine: noisy 2D simulations that judge physical scenes like people do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        from .. import __version__

        def _v(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"

        print(f"ipe {__version__} (Python {sys.version.split()[0]}, pymunk {_v('pymunk')}, torch {_v('torch')}, "
              f"pyro-ppl {_v('pyro-ppl')})")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Print ipe's version (and Python's, pymunk's, torch's) and "
                                                     "exit.")] = False) -> None:
    """The intuitive physics engine: noisy 2D simulations that judge physical scenes like people do."""


stimuli_app = typer.Typer(help="Generate stimulus sets.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(stimuli_app, name="stimuli")


from .common import (NoEarlyStopOption, ProgressOption, SeedOption, WorkersOption,  # noqa: E402
                     check_out as _check_out, note as _note)
from .cache import (BackendOption, CacheDirOption, CacheOption, SchedulerOption,  # noqa: E402
                    cache_note as _cache_note, run_options as _run_options)


# --------------------------------------------------------------------------- stimuli


@stimuli_app.command("towers")
def stimuli_towers(
    out: Annotated[Path, typer.Option("--out", "-o", help="Stimulus-set JSON file to write.")],
    n: Annotated[int, typer.Option("--n", min=1, help="Number of stimuli.")] = 20,
    seed: SeedOption = 0,
    blocks: Annotated[int, typer.Option("--blocks", min=1, help="Blocks per tower.")] = 10,
    same_height: Annotated[bool, typer.Option("--same-height", help="Make every tower equally tall.")] = False,
    height: Annotated[Optional[float], typer.Option("--height", help="Height (m) for --same-height.")] = None,
    mass_variants: Annotated[bool, typer.Option(
        "--mass-variants", help="Heavy/light blocks (10:1), each tower in both assignments.")] = False,
    balanced: Annotated[bool, typer.Option(
        "--balanced", help="Half stable, half falling under the no-noise model.")] = False,
    query: Annotated[str, typer.Option("--query", help="Query every stimulus asks.")] = "fall",
) -> None:
    """Generate Battaglia-Hamrick-Tenenbaum style block towers."""
    from ..scene import save_stimuli
    from ..stimuli.towers import generate_towers

    _check_out(out)
    sh: bool | float = height if height is not None else same_height
    if height is not None and not (0 < height < float("inf")):
        raise InputError(f"--height must be a finite number > 0, got {height}")
    stimuli = generate_towers(n, seed=seed, n_blocks=blocks, same_height=sh, mass_variants=mass_variants,
                              balanced=balanced, query=query)
    save_stimuli(stimuli, out)
    n_stable = sum(bool(s.metadata.get("stable")) for s in stimuli)
    _note(f"wrote {len(stimuli)} stimuli ({n_stable} stable under the no-noise model) to {out}")


# --------------------------------------------------------------------------- predict


def parse_noise_options(specs: list[str] | None) -> dict[str, float]:
    """``["launch_position=0.2", "collision-angle=0.1"]`` → ``{"launch_position": 0.2, "collision_angle": 0.1}``."""
    from ..noise import NoiseParams

    names = NoiseParams.names()
    out: dict[str, float] = {}
    for spec in specs or []:
        name, sep, text = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise InputError(f"--noise {spec!r}: expected NAME=VALUE, e.g. launch_position=0.2")
        if name not in names:
            raise InputError(f"--noise {spec!r}: unknown noise parameter {name!r}; expected one of {', '.join(names)}")
        if name in out:
            raise InputError(f"--noise {spec!r}: {name} is given twice")
        try:
            out[name] = float(text)
        except ValueError:
            raise InputError(f"--noise {spec!r}: {text.strip()!r} is not a number") from None
    return out


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
    from ..model import IPE
    from ..montecarlo import simulate, summarize
    from ..scene import load_stimuli

    _check_out(out)
    if rollouts is not None:
        _check_out(rollouts, "--rollouts")
    if target_se is not None:
        from ..adaptive import check_target_se

        check_target_se(target_se, "--target-se")
        if population:
            raise InputError("--target-se and --population cannot be combined (the population gives every "
                             "participant the same number of rollouts)")
    run_opts = _run_options(workers, backend, scheduler, cache, cache_dir)
    values = {"sigma": sigma, "phi": phi, "mu": mu, "friction": friction, "removal_impulse": removal_impulse}
    fitted: dict[str, float] = {}
    from_noise = parse_noise_options(noise_values)
    for name, v in from_noise.items():
        if values.get(name) is not None or (name == "angle_sigma" and angle_sigma):
            raise InputError(f"--noise {name}=…: {name} is also given as --{name.replace('_', '-')}")
        values[name] = v
    if params is not None:
        from ..inference.fitfiles import load_params

        fitted = load_params(params)
        clash = [k for k in fitted if values.get(k) is not None]
        if clash:
            raise InputError(f"--params {params} sets {', '.join(clash)}; do not also give --{clash[0]}")
        values.update(fitted)
        if population:
            from ..inference.fitfiles import load_population

            people = load_population(params).drop(columns="participant", errors="ignore")
        _note("using fitted values " + ", ".join(f"{k}={v:.4g}" for k, v in fitted.items())
              + (f", averaged over {len(people)} fitted participants" if population else ""))
    elif population:
        raise InputError("--population needs --params (the population is the participants of a fit)")
    values = {k: (0.0 if v is None else v) for k, v in values.items()}
    for name, v in (*values.items(), ("angle_sigma", angle_sigma)):
        if not (v >= 0 and v < float("inf")):
            what = f"--noise {name}" if name in from_noise \
                else f"--params {params}: {name}" if params is not None and name in fitted \
                else f"--{name.replace('_', '-')}"
            raise InputError(f"{what} must be a finite number >= 0, got {v}")
    stim = load_stimuli(stimuli)
    angle_sigma = values.pop("angle_sigma", angle_sigma)
    model = IPE(sigma=values["sigma"], phi=values["phi"], mu=values["mu"], angle_sigma=angle_sigma, n_samples=samples, seed=seed,
                workers=workers, early_stop=not no_early_stop, progress=progress)
    # fitted motion-noise parameters (ipe fit --free launch_position,… ) join the IPE's σ, φ, μ
    noise = dataclasses.replace(model.noise, **{k: v for k, v in values.items() if k not in ("sigma", "phi", "mu")})
    if population:
        from ..montecarlo import predict_population

        summary, table = predict_population(stim, noise, people.to_dict("records"), n_samples=model.n_samples,
                                            seed=model.seed, queries=query or None, early_stop=model.early_stop,
                                            progress=model.progress, **run_opts)
    else:
        table = simulate(stim, noise, n_samples=model.n_samples, seed=model.seed, queries=query or None,
                         early_stop=model.early_stop, progress=model.progress, target_se=target_se, **run_opts)
        summary = summarize(table)
    _cache_note(run_opts)
    write_csv(out, summary)
    if rollouts is not None:
        write_csv(rollouts, table)
    _note(f"wrote predictions for {len(stim)} stimuli to {out}")


# --------------------------------------------------------------------------- render


@app.command("render")
def render(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for one PNG per stimulus.")],
    size: Annotated[int, typer.Option("--size", min=16, max=4096, help="Image size in pixels.")] = 400,
    video: Annotated[bool, typer.Option(
        "--video", help="Videos for video models: first-frame PNG, conditioning clip, MP4 rollouts, colours.json "
                        "(see docs/video-models.md).")] = False,
    samples: Annotated[int, typer.Option("--samples", "-n", min=0, help="With --video: noisy rollouts per stimulus.")] = 0,
    sigma: Annotated[float, typer.Option("--sigma", help="With --video: perceptual noise σ of the samples.")] = 0.0,
    phi: Annotated[float, typer.Option("--phi", help="With --video: force noise φ of the samples.")] = 0.0,
    mu: Annotated[float, typer.Option("--mu", help="With --video: mass noise μ of the samples.")] = 0.0,
    fps: Annotated[float, typer.Option("--fps", help="With --video: frames per second (must divide the physics "
                                                     "rate, 240 by default).")] = 30.0,
    cond_frames: Annotated[int, typer.Option("--cond-frames", min=1, help="With --video: frames in the "
                                                                          "conditioning clip.")] = 4,
    seed: Annotated[int, typer.Option("--seed", min=0, help="With --video: seed of the noisy samples.")] = 0,
    progress: ProgressOption = None,
) -> None:
    """Render the first frame of every stimulus as <out>/<id>.png (with --video: videos for video models)."""
    from ..render import render_stimuli
    from ..scene import load_stimuli

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if not video and (samples or sigma or phi or mu):
        raise InputError("--samples, --sigma, --phi and --mu need --video")
    stim = load_stimuli(stimuli)
    if video:
        from ..video.render import render_videos

        manifest = render_videos(stim, out, size=size, fps=fps, samples=samples, sigma=sigma, phi=phi, mu=mu,
                                 seed=seed, cond_frames=cond_frames, progress=progress)
        _note(f"wrote {len(manifest)} files for {len(stim)} stimuli and colours.json to {out}")
        return
    paths = render_stimuli(stim, out, size=size)
    _note(f"wrote {len(paths)} images to {out}")


# --------------------------------------------------------------------------- validate


@app.command("validate")
def validate(stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")]) -> None:
    """Check a stimulus-set file and report the first problem, if any."""
    from ..scene import load_stimuli

    stim = load_stimuli(stimuli)
    print(f"{stimuli}: OK, {len(stim)} stimuli")


# --------------------------------------------------------------------------- demo


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the demo's outputs.")] = Path("ipe-demo"),
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Rollouts per stimulus.")] = 100,
    sigma: Annotated[float, typer.Option("--sigma", help="Perceptual noise σ of the noisy model.")] = 0.2,
    phi: Annotated[float, typer.Option("--phi", help="Force noise φ of the noisy model.")] = 0.05,
    seed: SeedOption = 0,
    workers: WorkersOption = 1,
    progress: ProgressOption = None,
) -> None:
    """Run the bundled demo towers end to end: predictions, a table and a figure."""
    from ..demo import run_demo

    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    result = run_demo(out, n_samples=samples, sigma=sigma, phi=phi, seed=seed, workers=workers, progress=progress)
    print(result.table_text)
    print(f"\nfigure: {result.figure}\npredictions: {result.predictions}")


# --------------------------------------------------------------------------- command groups in their own modules

from . import register  # noqa: E402,F401  (adds the commands of the later modules to ``app``)

# --------------------------------------------------------------------------- entry point


def _guard_paths(command) -> None:
    """Make every command refuse outputs that would overwrite its inputs (see ``common.check_paths``)."""
    import functools

    from .common import check_paths

    if hasattr(command, "commands"):
        for sub in command.commands.values():
            _guard_paths(sub)
        return
    callback = command.callback
    if callback is None or getattr(callback, "_ipe_guarded", False):
        return
    labels = {p.name: (p.opts[0] if getattr(p, "param_type_name", "") == "option" else p.name.upper())
              for p in command.params}

    @functools.wraps(callback)
    def guarded(*args, **kwargs):
        check_paths(kwargs, labels)
        return callback(*args, **kwargs)

    guarded._ipe_guarded = True
    command.callback = guarded


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input)."""
    cmd = typer.main.get_command(app)
    _guard_paths(cmd)
    debug = bool(os.environ.get("IPE_DEBUG"))
    from ..fingerprint import flush_warnings

    flush_warnings(show=False)  # nothing left over from an earlier call in this process
    try:
        rv = cmd.main(args=argv, prog_name="ipe", standalone_mode=False)
        flush_warnings()  # warnings kept for the end of a command that went through (e.g. no stimulus_set)
        return rv if isinstance(rv, int) else 0
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        _note("ipe: aborted")
        return 130
    except _USAGE as exc:
        flush_warnings(show=False)
        _note(f"ipe: error: {' '.join(exc.format_message().split())}")
        return 2
    except InputError as exc:
        flush_warnings(show=False)
        if debug:
            raise
        _note(f"ipe: error: {exc}")
        return 2
    except KeyboardInterrupt:
        _note("ipe: interrupted")
        return 130
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _note(f"ipe: error: {where}{exc.strerror or exc}")
        return 2
    except Exception as exc:  # a bug, not bad input: still one line, but exit 1
        if debug:
            raise
        _note(f"ipe: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
              "(set IPE_DEBUG=1 for a traceback)")
        return 1


def run() -> None:  # console-script entry point
    sys.exit(main())
