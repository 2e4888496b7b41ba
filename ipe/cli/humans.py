"""``ipe humans``: synthetic participants and summaries of response tables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError
from . import app
from .common import check_out, note

humans_app = typer.Typer(help="Human response data: synthesize participants, summarise tables.",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(humans_app, name="humans")


def _range(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", text)
    if not m:
        raise InputError(f"--samples-per-judgment {text!r}: expected A-B (e.g. 3-7) or one number")
    a = int(m.group(1))
    b = int(m.group(2) or a)
    if not 1 <= a <= b:
        raise InputError(f"--samples-per-judgment {text!r}: need 1 <= A <= B")
    return a, b


@humans_app.command("synthesize")
def synthesize_cmd(
    stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Response table (CSV) to write.")],
    participants: Annotated[int, typer.Option("--participants", "-p", min=1, help="Number of participants.")] = 30,
    sigma: Annotated[float, typer.Option("--sigma", help="Group perceptual noise σ.")] = 0.2,
    phi: Annotated[float, typer.Option("--phi", help="Group force noise φ.")] = 0.2,
    mu: Annotated[Optional[float], typer.Option("--mu", help="Group mass noise μ (free per participant "
                                                             "when given).")] = None,
    scale: Annotated[Optional[str], typer.Option(
        "--scale", help="rating:1-7, count:0-N or probability:0-100 (default: from the stimuli's query).")] = None,
    participant_sd: Annotated[float, typer.Option(
        "--participant-sd", help="Spread of participants around the group values (logit scale).")] = 0.3,
    samples_per_judgment: Annotated[str, typer.Option(
        "--samples-per-judgment", help="Rollouts behind each judgment, A-B (BHT: 3-7).")] = "3-7",
    response_sd: Annotated[float, typer.Option("--response-sd", help="Response noise (fraction of the scale).")] = 0.1,
    seed: Annotated[int, typer.Option("--seed", min=0, help="Random seed.")] = 0,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    truth: Annotated[Optional[Path], typer.Option("--truth", help="Also write each participant's true "
                                                                  "parameters to this CSV.")] = None,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar.")] = None,
) -> None:
    """Synthetic participants who judge each stimulus by a few noisy simulations."""
    from ..fileio import write_csv
    from ..humans import ResponseScale, synthesize
    from ..scene import load_stimuli

    check_out(out)
    if truth is not None:
        check_out(truth, "--truth")
    stim = load_stimuli(stimuli)
    sc = ResponseScale.parse(scale) if scale else None
    free = ("sigma", "phi") + (("mu",) if mu is not None else ())
    responses, params = synthesize(stim, participants, sigma=sigma, phi=phi, mu=mu or 0.0, scale=sc, seed=seed,
                                   participant_sd=participant_sd, samples_per_judgment=_range(samples_per_judgment),
                                   response_sd=response_sd, workers=workers, progress=progress, free=free)
    write_csv(out, responses)
    if truth is not None:
        write_csv(truth, params)
    note(f"wrote {len(responses)} responses of {participants} synthetic participants to {out}")


@humans_app.command("summary")
def summary_cmd(
    responses: Annotated[Path, typer.Argument(help="Response table (.csv or .parquet).")],
    stimuli: Annotated[Optional[Path], typer.Option("--stimuli", "-s", help="Check ids against this "
                                                                           "stimulus set.")] = None,
    scale: Annotated[Optional[str], typer.Option("--scale", help="Check responses against this scale.")] = None,
    jspsych: Annotated[bool, typer.Option("--jspsych", help="RESPONSES is a jsPsych CSV export.")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the per-stimulus table here.")] = None,
) -> None:
    """Validate a response table; print per-stimulus means and the split-half reliability."""
    from ..fileio import write_csv
    from ..humans import ResponseScale, aggregate, load_jspsych, load_responses, split_half_reliability, \
        validate_responses
    from ..scene import load_stimuli

    if out is not None:
        check_out(out)
    stim = load_stimuli(stimuli) if stimuli is not None else None
    sc = ResponseScale.parse(scale) if scale else None
    table = load_jspsych(responses) if jspsych else load_responses(responses)
    table = validate_responses(table, stimuli=stim, scale=sc, where=str(responses))
    agg = aggregate(table)
    print(agg.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    rel = split_half_reliability(table) if table["participant"].nunique() > 1 else None
    n_p = table["participant"].nunique()
    line = f"\n{len(table)} trials, {n_p} participants, {len(agg)} stimuli"
    if rel is not None:
        line += f"; split-half reliability r = {rel['r']:.3f} [{rel['q025']:.3f}, {rel['q975']:.3f}]"
    print(line)
    if out is not None:
        write_csv(out, agg)
