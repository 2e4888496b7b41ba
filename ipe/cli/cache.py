"""``ipe cache info|clear``: what the simulation cache holds, and emptying it.

The options that choose whether a command uses the cache (``--cache``,
``--cache-dir``) are in :mod:`ipe.cli.backend`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..fileio import optional_import
from .app import group
from .common import note

cache_app = group("cache", "The simulation cache: content-addressed Parquet files of rollouts.")

# --------------------------------------------------------------------------- ipe cache info / clear

DirOption = Annotated[Optional[Path], typer.Option(
    "--dir", help="Cache directory (default: $IPE_CACHE_DIR or ~/.cache/ipe/simulations).")]


def _open(directory: Path | None):
    from ..cache import SimulationCache

    return SimulationCache(directory)


@cache_app.command("info")
def cache_info(
    directory: DirOption = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check every entry's checksum too.")] = False,
) -> None:
    """Where the cache is, its physics version, how many entries and bytes it holds."""
    if verify:
        optional_import("pyarrow", "--verify (the cache's entries are Parquet files)")
    info = _open(directory).info(verify=verify)
    for line in info.lines():
        print(line)
    if info.corrupt:
        for p in info.corrupt:
            print(f"  corrupt: {p}")


@cache_app.command("clear")
def cache_clear(
    directory: DirOption = None,
    stale: Annotated[bool, typer.Option(
        "--stale", help="Remove only entries of other physics versions and unfinished temporary files.")] = False,
) -> None:
    """Delete cached rollouts (all of them, or with --stale only those no run can use any more)."""
    from ..cache import human_bytes

    store = _open(directory)
    n, size = store.clear(stale_only=stale)
    note(f"removed {n} file(s), {human_bytes(size)}, from {store.root}")
