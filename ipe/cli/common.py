"""Small helpers shared by the command modules of ``ipe.cli``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InputError


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
