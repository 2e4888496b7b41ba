"""``ipe validate``: check a stimulus-set file and report its first problem."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command("validate")
def validate(stimuli: Annotated[Path, typer.Argument(help="Stimulus-set JSON file.")]) -> None:
    """Check a stimulus-set file and report the first problem, if any."""
    from ..scenefile import load_stimuli

    stim = load_stimuli(stimuli)
    print(f"{stimuli}: OK, {len(stim)} stimuli")
