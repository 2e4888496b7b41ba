"""Where simulations run and whether they are cached: ``--backend``, ``--scheduler``, ``--cache``, ``--cache-dir``.

Shared by ``ipe predict``, ``ipe sweep`` and ``ipe fit``: :func:`run_options`
turns the options (and ``--workers``) into the keyword arguments of
:func:`ipe.simulate`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import InputError
from .common import check_out_dir, note

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
    if cache_dir is not None:
        check_out_dir(cache_dir, "--cache-dir")
    store = SimulationCache(cache_dir) if (cache or cache_dir is not None) else None
    return {"workers": workers, "backend": backend, "scheduler": scheduler, "cache": store}


def cache_note(opts: dict[str, Any]) -> None:
    """Say on stderr what the cache did, when one was used."""
    store = opts.get("cache")
    if store is not None:
        note(f"cache {store.root}: {store.stats}")
