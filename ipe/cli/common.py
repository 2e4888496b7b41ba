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
OUTPUT_PARAMS = ("out", "rollouts", "scores", "figure", "truth", "videos_out", "materials")


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _inside(path: Path, directory: Path) -> bool:
    """Whether ``path`` is ``directory`` or lies anywhere under it (symbolic links resolved)."""
    try:
        p, d = path.resolve(), directory.resolve()
    except (OSError, RuntimeError):
        return False
    return p == d or d in p.parents


def check_not_input(path: Path, label: str, inputs: list[tuple[str, Path]]) -> None:
    """Refuse ``path`` (an output) when it is one of ``inputs`` (``(label, path)``), is an input directory,
    or is something that exists inside an input directory (part of what the command reads).

    A new file inside an input directory is allowed (``ipe compare --fit fit/ --out fit/comparison.csv``):
    it overwrites nothing the command reads.
    """
    for other_label, other in inputs:
        if str(other) == "-":
            continue
        if _same_file(path, other):
            raise InputError(f"{label} {path}: the same file as {other_label} {other}; writing it would destroy "
                             "the input")
        if other.is_dir() and _inside(path, other) and (path.exists() or path.is_symlink()):
            raise InputError(f"{label} {path}: lies inside {other_label} {other}, which this command reads; "
                             "writing it would overwrite an input")


def check_paths(params: dict, labels: dict[str, str]) -> None:
    """Refuse a command whose output would overwrite one of its inputs or another of its outputs.

    ``params`` are the command's arguments by name; paths among them (and the
    PATH of ``NAME=PATH`` model specs) are inputs unless their name is in
    :data:`OUTPUT_PARAMS`. ``labels`` gives each name's option (``--out``).
    An output may not be an input file or directory, nor overwrite anything inside an input directory.
    """
    paths: list[tuple[str, Path, bool]] = []
    for name, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if isinstance(v, str) and name == "model" and "=" in v:
                v = Path(v.split("=", 1)[1])
            if isinstance(v, Path) and str(v) != "-":
                paths.append((labels.get(name, name), v, name in OUTPUT_PARAMS))
    inputs = [(label, path) for label, path, is_out in paths if not is_out]
    for label, path, is_out in paths:
        if is_out:
            check_not_input(path, label, inputs)
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
