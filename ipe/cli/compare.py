"""``ipe compare``: models compared with people, on a fit (``--fit``) or on judgment tables (``--humans``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from ..fingerprint import check_stimulus_set
from .app import app
from .common import NoEarlyStopOption, ProgressOption, SeedOption, WorkersOption, check_out, check_out_dir, note
from .noise import check_noise


@app.command("compare")
def compare(
    responses: Annotated[Optional[Path], typer.Argument(help="The tidy response table (the one the fit used, "
                                                              "with --fit).")] = None,
    stimuli: Annotated[Path, typer.Option("--stimuli", "-s", help="Stimulus-set JSON file.")] = ...,
    fit_dir: Annotated[Optional[Path], typer.Option("--fit", help="The --out directory of `ipe fit`.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="With --fit: comparison table (CSV) to write; with "
                                                          "--humans: the report's directory.")] = ...,
    humans: Annotated[Optional[Path], typer.Option(
        "--humans", help="Response table: compare judgment tables with people (summary.csv and a report).")] = None,
    model: Annotated[Optional[list[str]], typer.Option(
        "--model", "-m", help="NAME=JUDGMENTS.csv, a table with the columns of `ipe predict` (repeatable).")] = None,
    sigma: Annotated[float, typer.Option("--sigma", help="With --humans: σ of the built-in IPE row.")] = 0.2,
    phi: Annotated[float, typer.Option("--phi", help="With --humans: φ of the built-in IPE row.")] = 0.05,
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="With --humans: rollouts per stimulus "
                                                                        "of the built-in IPE row.")] = 50,
    no_ipe: Annotated[bool, typer.Option("--no-ipe", help="With --humans: no built-in IPE row.")] = False,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", help="With --humans: response scale (default: from the stimuli's query).")] = None,
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="Folds of held-out stimuli.")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", min=1, help="NUTS warm-up per baseline fit.")] = 200,
    draws: Annotated[int, typer.Option("--draws", min=1, help="NUTS draws per baseline fit.")] = 200,
    chains: Annotated[int, typer.Option("--chains", min=1, help="Chains per baseline fit.")] = 2,
    jspsych: Annotated[bool, typer.Option("--jspsych", help="RESPONSES is a jsPsych CSV export.")] = False,
    seed: SeedOption = 0,
    workers: WorkersOption = 1,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
) -> None:
    """Compare models with people.

    With --fit: the fitted IPE against the no-noise model and feature models (k-fold, LOO, WAIC, noise ceiling).
    With --humans: any judgment tables (IPE, no-noise, CNN, video models, imported) on accuracy, r with a
    bootstrap CI, Cohen's κ with each participant, RMSE and the noise ceiling; writes summary.csv and a report.
    """
    if humans is not None or model:
        if fit_dir is not None:
            raise InputError("give either --fit (the fitted comparison) or --humans/--model, not both")
        if humans is not None and responses is not None:
            raise InputError("give the response table once: as RESPONSES or with --humans")
        _compare_judgments(humans or responses, stimuli, out, model or [], sigma, phi, samples, no_ipe, scale,
                           jspsych, seed, workers, True if progress is None else progress,
                           early_stop=not no_early_stop)
        return
    if fit_dir is None:
        raise InputError("give --fit FIT_DIR (the fitted comparison) or --humans RESPONSES --model NAME=CSV ... "
                         "(the judgment comparison)")
    if responses is None:
        raise InputError("missing the response table RESPONSES")
    _compare_fit(responses, stimuli, fit_dir, out, folds, warmup, draws, chains, jspsych, seed, workers,
                 True if progress is None else progress, early_stop=not no_early_stop)


def _responses(responses: Path, stimuli: Path, stim, scale, jspsych: bool):
    """The response table, checked against the stimuli and the scale (and against the stimulus set's name)."""
    from ..humans import load_jspsych, load_responses, validate_responses

    table = load_jspsych(responses) if jspsych else load_responses(responses)
    table = validate_responses(table, stimuli=stim, scale=scale, where=str(responses))
    check_stimulus_set(table, stim, f"--stimuli {stimuli}", str(responses))
    return table


def _compare_fit(responses: Path, stimuli: Path, fit_dir: Path, out: Path, folds: int, warmup: int, draws: int,
                 chains: int, jspsych: bool, seed: int, workers: int, progress: bool, early_stop: bool = True) -> None:
    """``--fit``: the fitted IPE against the no-noise model and feature models, by k-fold, LOO and WAIC.

    The IPE's predictions come from the fit's emulator (simulated when the fit ran); ``early_stop`` governs the
    no-noise model's rollouts.
    """
    from ..fileio import write_csv
    from ..inference.comparison import compare_models, plot_comparison
    from ..inference.hierarchical import load_fit
    from ..scenefile import load_stimuli

    check_out(out)
    fit = load_fit(fit_dir)
    stim = load_stimuli(stimuli)
    table = _responses(responses, stimuli, stim, fit.scale, jspsych)
    result = compare_models(table, stim, fit, fit.scale, k=folds, seed=seed, workers=workers, num_warmup=warmup,
                            num_samples=draws, num_chains=chains, progress=progress, report=note,
                            early_stop=early_stop)
    write_csv(out, result)
    fig = plot_comparison(result, out.with_suffix(".png"))
    print(result.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    note(f"wrote {out} and {fig}")


def _model_kind(name: str) -> str:
    low = name.lower()
    if low.startswith("ipe") or low == "no-noise":
        return "simulator"
    if "video" in low or "simvp" in low or "convlstm" in low:
        return "video"
    if "cnn" in low or "physnet" in low:
        return "baseline"
    return "external"


def _read_judgments(name: str, path: Path):
    from ..fileio import read_csv

    import pandas as pd

    label = f"--model {name}={path}"
    table = read_csv(path, dtype={"stimulus_id": str, "query": str}, label=label, what="judgments CSV")
    missing = [c for c in ("stimulus_id", "query", "mean") if c not in table.columns]
    if missing:
        raise InputError(f"{label}: missing column(s) {', '.join(missing)} (the columns of `ipe predict`)")
    if table.empty:
        raise InputError(f"{label}: no rows")
    mean = pd.to_numeric(table["mean"], errors="coerce")
    text = table["mean"].isna() | mean.notna()  # empty or NaN cells are missing judgments; text is an error
    if not text.all():
        i = table.index[~text][0]
        raise InputError(f"{label}: row {i + 2}: mean {table.loc[i, 'mean']!r} of {table.loc[i, 'stimulus_id']!r} "
                         "is not a number")
    if not mean.abs().lt(float("inf")).any() and "quality" not in table.columns:  # a readout: every video flagged
        raise InputError(f"{label}: no finite mean in any row")
    dup = table.duplicated(["stimulus_id", "query"])
    if dup.any():
        row = table[dup].iloc[0]
        raise InputError(f"{label}: {row['stimulus_id']!r} ({row['query']}) has more than one row")
    return table.assign(mean=mean)


def _compare_judgments(responses: Path | None, stimuli: Path, out: Path, models: list[str], sigma: float, phi: float,
                       samples: int, no_ipe: bool, scale: str | None, jspsych: bool, seed: int, workers: int,
                       progress: bool | None = None, early_stop: bool = True) -> None:
    from ..baselines import feature_table
    from ..humans import ResponseScale, scale_for_stimuli
    from ..model import IPE
    from ..report import compare_judgments, write_report
    from ..scenefile import load_stimuli

    if responses is None:
        raise InputError("--model needs --humans RESPONSES")
    check_out_dir(out)
    sigma, phi = check_noise({"sigma": sigma, "phi": phi}).values()
    tables, kinds = _model_tables(models)
    stim = load_stimuli(stimuli)
    sc = ResponseScale.parse(scale) if scale else scale_for_stimuli(stim)
    table = _responses(responses, stimuli, stim, sc, jspsych)
    used = set(table["stimulus_id"].astype(str))
    subset = stim.subset(used)
    truth = IPE.ground_truth(workers=workers, progress=False, early_stop=early_stop).predict(subset)
    built = {}
    if not no_ipe and not any(n.lower() == "ipe" or n.lower().startswith("ipe ") for n in tables):
        name = f"IPE (σ={sigma:g}, φ={phi:g})"
        note(f"simulating the IPE row: {len(subset)} stimuli × {samples} rollouts")
        built[name] = _ipe_row(subset, sigma, phi, samples, seed, workers, progress, early_stop)
        kinds[name] = "simulator"
    feats = feature_table(subset).set_index("stimulus_id")
    features = {f"feature: {c}": feats[c] for c in ("com_offset", "height")}
    summary, per = compare_judgments(table, subset, {**built, **tables}, scale=sc, ground_truth=truth,
                                     features=features, kinds=kinds, seed=seed)
    notes = [f"responses: {responses} ({table['participant'].nunique()} participants, {len(table)} answers, "
             f"scale {sc})", f"stimuli: {stimuli}"]
    notes += [f"{n}: {p}" for n, p in (spec.partition("=")[::2] for spec in models)]
    paths = write_report(out, summary, per, title=f"Models and people on {stimuli.name}", notes=notes)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    note(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


def _model_tables(models: list[str]) -> tuple[dict, dict[str, str]]:
    """``--model NAME=JUDGMENTS.csv`` …: each model's judgments table and its kind, by name."""
    tables, kinds = {}, {}
    for spec in models:
        name, sep, path = spec.partition("=")
        name = name.strip()
        if not sep or not name or not path.strip():
            raise InputError(f"--model {spec!r}: expected NAME=JUDGMENTS.csv (e.g. CNN=cnn/judgments.csv)")
        if name in tables:
            raise InputError(f"--model {spec!r}: the name {name!r} is given twice")
        tables[name] = _read_judgments(name, Path(path.strip()))
        kinds[name] = _model_kind(name)
    return tables, kinds


def _ipe_row(subset, sigma: float, phi: float, samples: int, seed: int, workers: int, progress,
             early_stop: bool = True):
    """The built-in IPE's judgments, with the share of its samples that say "it falls" (``p_falls``)."""
    from ..model import IPE
    from ..montecarlo import summarize
    from ..report import p_falls

    rollouts = IPE(sigma=sigma, phi=phi, n_samples=samples, seed=seed, workers=workers, early_stop=early_stop,
                   progress=progress).simulate(subset)
    pred = summarize(rollouts)
    pred["p_falls"] = pred["stimulus_id"].map(p_falls(rollouts, subset))
    return pred
