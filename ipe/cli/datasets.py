"""``ipe datasets``: importers of published data sets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import group
from .common import NoEarlyStopOption, check_out_dir, note

datasets_app = group("datasets", "Import published data sets.")
import_app = typer.Typer(help="Import a data set into ipe's stimulus and response formats.", no_args_is_help=True,
                         rich_markup_mode=None)
datasets_app.add_typer(import_app, name="import")


@import_app.command("mental-jenga")
def mental_jenga(
    root: Annotated[Path, typer.Argument(help="A clone of cicl-stanford/mental_jenga (or the shared subset).")],
    experiment: Annotated[int, typer.Option("--experiment", "-e", help="Experiment 1, 2 or 3.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for stimuli.json, responses.csv and "
                                                          "import_report.json.")],
    no_early_stop: NoEarlyStopOption = False,
) -> None:
    """Mental Jenga (Zhou et al. 2023): towers, queries, responses, and agreement with the authors' labels."""
    from ..datasets.mental_jenga import import_mental_jenga

    check_out_dir(out)
    result = import_mental_jenga(root, experiment, out, early_stop=not no_early_stop)
    rep = result.report
    note(f"wrote {rep['stimuli']} stimuli to {result.stimuli_path}")
    if result.responses_path is not None:
        note(f"wrote {rep['responses']} responses of {rep['participants']} participants to {result.responses_path}")
    else:
        note(f"experiment {experiment}: no response files in {root}; wrote stimuli only")
    agree = rep.get("label_agreement")
    if agree:
        note(f"no-noise simulation reproduces the authors' fall labels for {agree['matched']}/{agree['bricks']} "
             f"bricks ({agree['agreement']:.1%})")
