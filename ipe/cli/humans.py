"""``ipe humans``: synthetic participants and summaries of response tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from .app import group
from .common import NoEarlyStopOption, ProgressOption, SeedOption, WorkersOption, check_out, note

humans_app = group("humans", "Human response data: synthesize participants, summarise tables.")


def _range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m:
        raise InputError(f"--samples-per-judgment {text!r}: expected A-B (e.g. 3-7) or one number")
    a = int(m.group(1))
    b = int(m.group(2) or a)
    if not 1 <= a <= b:
        raise InputError(f"--samples-per-judgment {text!r}: need 1 <= A <= B")
    return a, b


def _mapping(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, name = item.partition("=")
        if not sep or not key.strip() or not name.strip():
            raise InputError(f"--column {item!r}: expected COLUMN=NAME (e.g. participant=worker_id)")
        out[key.strip()] = name.strip()
    return out


@humans_app.command("synthesize")
def synthesize_cmd(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    participants: Annotated[int, typer.Option("--participants", "-p", min=1, help="Number of participants.")],
    sigma: Annotated[float, typer.Option("--sigma", help="Group perceptual noise σ, strictly inside (0, 1).")],
    phi: Annotated[float, typer.Option("--phi", help="Group force noise φ, strictly inside (0, 1).")],
    seed: SeedOption,
    out: Annotated[Path, typer.Option("--out", "-o", help="Response table (CSV) to write.")],
    mu: Annotated[Optional[float], typer.Option(
        "--mu", help="Group mass noise μ in (0, 1); when given, μ also varies across participants "
                     "(default: no mass noise).")] = None,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", help="rating:LOW-HIGH, count:0-N or probability:0-100 (default: from the stimuli's query).")] = None,
    participant_sd: Annotated[float, typer.Option(
        "--participant-sd", min=0.0, help="Spread of participants around the group values (sd on the logit "
                                          "scale).")] = 0.3,
    samples_per_judgment: Annotated[str, typer.Option(
        "--samples-per-judgment", help="Rollouts behind each judgment, drawn uniformly from A-B (BHT: 3-7); "
                                       "one number for a fixed count.")] = "3-7",
    response_sd: Annotated[float, typer.Option(
        "--response-sd", min=0.0, help="Response noise sd, in units of a 0-1 query value (counts: of N).")] = 0.1,
    workers: WorkersOption = 1,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Also write each participant's true "
                                                                  "σ, φ, μ to this CSV.")] = None,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
) -> None:
    """Synthetic participants who judge each stimulus by a few noisy simulations (see docs/data-format.md)."""
    from ..fileio import write_csv
    from ..humans import ResponseScale, synthesize
    from ..scenefile import load_stimuli

    check_out(out)
    if truth is not None:
        check_out(truth, "--truth")
    spj = _range(samples_per_judgment)
    sc = ResponseScale.parse(scale) if scale else None
    stim = load_stimuli(stimuli)
    free = ("sigma", "phi") + (("mu",) if mu is not None else ())
    responses, params = synthesize(stim, participants, sigma=sigma, phi=phi, mu=0.0 if mu is None else mu, scale=sc,
                                   seed=seed, participant_sd=participant_sd, samples_per_judgment=spj,
                                   response_sd=response_sd, workers=workers, progress=progress, free=free,
                                   early_stop=not no_early_stop)
    write_csv(out, responses)
    if truth is not None:
        write_csv(truth, params)
    note(f"wrote {len(responses)} responses of {participants} synthetic participants to {out}"
         + (f" and their parameters to {truth}" if truth is not None else ""))


@humans_app.command("summary")
def summary_cmd(
    responses: Annotated[Path, typer.Argument(help="Response table (.csv or .parquet).")],
    stimuli: Annotated[Optional[Path], typer.Option(
        "--stimuli", "-s", help="Check stimulus ids against this stimulus set (and responses against its "
                                "default scale unless --scale is given).")] = None,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", help="Check responses against this scale: rating:LOW-HIGH, count:0-N, probability:0-100 "
                         "or position:LOW-HIGH.")] = None,
    jspsych: Annotated[bool, typer.Option("--jspsych", help="RESPONSES is a jsPsych CSV export "
                                                            "(non-judgment rows are dropped).")] = False,
    column: Annotated[Optional[list[str]], typer.Option(
        "--column", "-c", help="COLUMN=NAME: read schema column COLUMN from the file's column NAME, e.g. "
                               "participant=worker_id (repeatable).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the per-stimulus table here.")] = None,
) -> None:
    """Validate a response table; print per-stimulus means and the split-half reliability."""
    from ..fileio import write_csv
    from ..fingerprint import check_stimulus_set
    from ..humans import ResponseScale, aggregate, load_jspsych, load_responses, scale_for_stimuli, \
        validate_responses
    from ..metrics import CEILING_HINT, NOISE_CEILING, format_ceiling, split_half_ceiling
    from ..scenefile import load_stimuli

    if out is not None:
        check_out(out)
    sc = ResponseScale.parse(scale) if scale else None
    stim = load_stimuli(stimuli) if stimuli is not None else None
    defaulted = False
    if sc is None and stim is not None:
        try:
            sc, defaulted = scale_for_stimuli(stim), True
        except InputError:
            sc = None  # no default scale for these queries: check ids only
    mapping = _mapping(column or [])
    table = load_jspsych(responses, mapping) if jspsych else load_responses(responses, mapping)
    try:
        table = validate_responses(table, stimuli=stim, scale=sc, where=str(responses))
    except InputError as exc:
        if defaulted and ("outside the scale" in str(exc) or "whole number" in str(exc)):
            raise InputError(f"{exc} (the stimuli's default scale; pass --scale if the data use another)") from None
        raise
    if stim is not None:
        check_stimulus_set(table, stim, f"--stimuli {stimuli}", str(responses))
    print(f"scale: {sc}" if sc is not None else "scale: not checked (no --scale)")
    agg = aggregate(table)
    print(agg.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    n_p = table["participant"].nunique()
    print(f"\n{len(table)} trials, {n_p} participants, {len(agg)} stimuli")
    if n_p > 1:
        print(format_ceiling(split_half_ceiling(table)))
        print(CEILING_HINT)
    else:
        print(f"{NOISE_CEILING}: needs at least 2 participants")
    if out is not None:
        write_csv(out, agg)
