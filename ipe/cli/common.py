"""Small helpers shared by the command modules of ``ipe.cli``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import InputError

# Options that many commands share, declared once (typer reads them from the annotations).
ProgressOption = Annotated[Optional[bool], typer.Option(
    "--progress/--no-progress", help="Progress bars (default: when stderr is a terminal).")]
SeedOption = Annotated[int, typer.Option("--seed", min=0, help="Random seed; the same seed gives the same file.")]
WorkersOption = Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes for the simulations.")]
NoEarlyStopOption = Annotated[bool, typer.Option(
    "--no-early-stop", help="Always simulate the full horizon, even once every body rests.")]


def note(msg: str) -> None:
    """Print a status line on stderr (stdout stays for tables)."""
    print(msg, file=sys.stderr)


def check_out(path: Path, what: str = "--out") -> Path:
    """Refuse an output file path that is an existing directory."""
    if path.exists() and path.is_dir():
        raise InputError(f"{what} {path}: is a directory, expected a file path")
    return path


def check_out_dir(path: Path, what: str = "--out") -> Path:
    """Refuse an output directory path that is an existing file."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path}: exists and is not a directory")
    return path
