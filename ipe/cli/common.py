"""Small helpers shared by the command modules of ``ipe.cli``."""

from __future__ import annotations

import contextlib
import os
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


#: Parameters (by name) that commands write to; every other path they are given is read.
OUTPUT_PARAMS = ("out", "rollouts", "scores", "figure", "truth", "videos_out")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_paths(params: dict, labels: dict[str, str]) -> None:
    """Refuse a command whose output would overwrite one of its inputs or another of its outputs.

    ``params`` are the command's arguments by name; paths among them (and the
    PATH of ``NAME=PATH`` model specs) are inputs unless their name is in
    :data:`OUTPUT_PARAMS`. ``labels`` gives each name's option (``--out``).
    """
    paths: list[tuple[str, Path, bool]] = []
    for name, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, str) and name == "model" and "=" in v:
                v = Path(v.split("=", 1)[1])
            if isinstance(v, Path) and str(v) != "-":
                paths.append((labels.get(name, name), v, name in OUTPUT_PARAMS))
    for i, (label, path, is_out) in enumerate(paths):
        if not is_out:
            continue
        for j, (other_label, other, other_out) in enumerate(paths):
            if i != j and (j < i or not other_out) and _same_file(path, other):
                raise InputError(f"{label} {path}: the same file as {other_label} {other}; "
                                 f"writing it would destroy {'that output' if other_out else 'the input'}")


def check_out(path: Path, what: str = "--out") -> Path:
    """Refuse an output file path that is an existing directory."""
    if path.exists() and path.is_dir():
        raise InputError(f"{what} {path}: is a directory, expected a file path")
    return path


@contextlib.contextmanager
def output_dir(path: Path, what: str = "--out"):
    """Make the output directory up front (so an unwritable place fails before any work) and remove it
    again, if this command made it and left it empty, when the command fails."""
    check_out_dir(path, what)
    made = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot create the directory ({exc.strerror or exc})") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"{what} {path}: the directory is not writable")
    try:
        yield path
    except BaseException:
        if made:
            try:
                path.rmdir()  # only if empty
            except OSError:
                pass
        raise


def check_out_dir(path: Path, what: str = "--out") -> Path:
    """Refuse an output directory path that is an existing file."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {path}: exists and is not a directory")
    return path
