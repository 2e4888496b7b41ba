"""``ipe cache info|clear``, and the options that choose where simulations run (``--backend``, ``--scheduler``,
``--cache``) shared by ``ipe predict`` and ``ipe fit``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import InputError
from . import app
from .common import note

cache_app = typer.Typer(help="The simulation cache: content-addressed Parquet files of rollouts.",
                        no_args_is_help=True, rich_markup_mode=None)
app.add_typer(cache_app, name="cache")

# --------------------------------------------------------------------------- shared options

BackendOption = Annotated[Optional[str], typer.Option(
    "--backend", help="Where rollouts run: serial, process (a local pool of --workers) or dask "
                      "(a LocalCluster of --workers, or the cluster at --scheduler); "
                      "default: serial for one worker, process otherwise. Never changes results.")]
SchedulerOption = Annotated[Optional[str], typer.Option(
    "--scheduler", help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --backend dask).")]
CacheOption = Annotated[bool, typer.Option(
    "--cache/--no-cache", help="Reuse and store rollouts in the simulation cache ($IPE_CACHE_DIR or "
                               "~/.cache/ipe/simulations).")]
CacheDirOption = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Simulation cache directory (implies --cache).")]


def run_options(workers: int, backend: str | None, scheduler: str | None, cache: bool,
                cache_dir: Path | None) -> dict[str, Any]:
    """Keyword arguments for :func:`ipe.simulate` from the CLI's backend and cache options."""
    from ..cache import SimulationCache
    from ..montecarlo import BACKENDS

    if backend is not None and backend not in BACKENDS:
        raise InputError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    if scheduler is not None:
        if backend not in (None, "dask"):
            raise InputError(f"--scheduler needs --backend dask, not {backend!r}")
        if not scheduler.strip():
            raise InputError("--scheduler: empty address")
        backend = "dask"
    if cache_dir is not None and cache_dir.exists() and not cache_dir.is_dir():
        raise InputError(f"--cache-dir {cache_dir}: exists and is not a directory")
    store = SimulationCache(cache_dir) if (cache or cache_dir is not None) else None
    return {"workers": workers, "backend": backend, "scheduler": scheduler, "cache": store}


def cache_note(opts: dict[str, Any]) -> None:
    """Say on stderr what the cache did, when one was used."""
    store = opts.get("cache")
    if store is not None:
        note(f"cache {store.root}: {store.stats}")


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
