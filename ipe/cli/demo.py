"""``ipe demo``: the bundled demo towers end to end (see :mod:`ipe.demo`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .app import app
from .common import NoEarlyStopOption, ProgressOption, SeedOption, WorkersOption, check_out_dir
from .noise import check_noise


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the demo's outputs.")] = Path("ipe-demo"),
    samples: Annotated[int, typer.Option("--samples", "-n", min=1, help="Rollouts per stimulus.")] = 100,
    sigma: Annotated[float, typer.Option("--sigma", help="Perceptual noise σ of the noisy model.")] = 0.2,
    phi: Annotated[float, typer.Option("--phi", help="Force noise φ of the noisy model.")] = 0.05,
    seed: SeedOption = 0,
    workers: WorkersOption = 1,
    no_early_stop: NoEarlyStopOption = False,
    progress: ProgressOption = None,
) -> None:
    """Run the bundled demo towers end to end: predictions, a table and a figure."""
    from ..demo import run_demo

    check_out_dir(out)
    noise = check_noise({"sigma": sigma, "phi": phi})
    result = run_demo(out, n_samples=samples, seed=seed, workers=workers, progress=progress,
                      early_stop=not no_early_stop, **noise)
    print(result.table_text)
    print(f"\nfigure: {result.figure}\npredictions: {result.predictions}")
