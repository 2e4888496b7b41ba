"""Adaptive sample counts: rollouts in rounds until every query's Monte Carlo error meets a target.

:func:`simulate_adaptive` (also ``simulate(..., target_se=...)``,
``IPE(target_se=...)``, ``ipe predict --target-se`` and ``ipe sweep
--target-se``) runs each (stimulus, parameter point) in rounds of samples
``[0, n₀)``, ``[n₀, n₁)``, … and stops that pair once the standard error of
every query, ``se = sd / sqrt(n_valid)`` as :func:`ipe.montecarlo.summarize`
reports it, is at most ``target_se``, or once it has ``max_samples``.

* **First round**: ``min_samples`` (16 by default). A pair whose first
  ``min_samples`` rollouts all agree has ``se = 0`` and stops there.
* **Next rounds**: se falls as ``1/sqrt(n)``, so a pair at ``n`` samples
  with the largest standard error ``se`` is projected to need
  ``n · (se / target)²``; the next round goes there, but at least ``n/4``
  samples further and at most to ``4n`` (a projection from few samples is
  rough), and never beyond ``max_samples``. A query with fewer than two
  defined values (``n_valid < 2``, e.g. ``falls_left`` when nothing fell)
  has no standard error yet: its pair doubles.

Sample ``k``'s seed depends only on (seed, stimulus, point, ``k``) (see
:mod:`ipe.seeding`), and each decision only on the values of the samples
already run, so the counts and the table are the same for every backend,
worker count and batch size, and a pair that stops at ``n`` samples holds
exactly the first ``n`` rows of a fixed ``n_samples`` run with the same seed.
The cache, when given, stores every round of every pair as its own entry
(its sample range is part of the key), so a rerun is read back round by round.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .cache import as_cache
from .noise import NoiseParams
from .runner import RUN_RULES, RunSpec, prepare_run, progress_bar, resolve_queries
from .validation import POSITIVE_INT, POSITIVE_NUMBER, validate_params

DEFAULT_MIN_SAMPLES = 16


def query_se(values: np.ndarray) -> np.ndarray:
    """Per-query (column) standard error of the mean, as ``summarize`` computes it; NaN below 2 values."""
    out = np.full(values.shape[1], math.nan)
    for j in range(values.shape[1]):
        v = values[:, j]
        ok = v[~np.isnan(v)]
        if len(ok) > 1:
            out[j] = float(ok.std(ddof=1)) / math.sqrt(len(ok))
    return out


def next_count(values: np.ndarray, target: float, min_samples: int, max_samples: int) -> int:
    """Samples a pair should have after its next round, given its ``values`` so far (== ``len(values)`` to stop)."""
    n = len(values)
    if n == 0:
        return min(min_samples, max_samples)
    if n >= max_samples:
        return n
    se = query_se(values)
    if np.all(se <= target):  # False for NaN
        return n
    if np.any(np.isnan(se)):
        want = 2 * n
    else:
        want = math.ceil(n * (float(se.max()) / target) ** 2)
    return int(min(max_samples, 4 * n, max(want, n + max(1, n // 4))))


@validate_params(target_se=POSITIVE_NUMBER, max_samples=POSITIVE_INT, min_samples=POSITIVE_INT, **RUN_RULES)
def simulate_adaptive(stimuli, params: NoiseParams | Sequence[NoiseParams] = NoiseParams(), target_se: float = 0.05,
                      max_samples: int = 100, min_samples: int = DEFAULT_MIN_SAMPLES, seed: int = 0, queries=None,
                      workers: int = 1, backend: str | None = None, batch_size: int | None = None,
                      early_stop: bool = True, progress: bool | None = None, common_random_numbers: bool = False,
                      scheduler: Any = None, cache: Any = None) -> pd.DataFrame:
    """Rollouts of every stimulus at every point until every query's se ≤ ``target_se`` (or ``max_samples``).

    Takes the arguments of :func:`ipe.montecarlo.simulate` (``max_samples``
    is its ``n_samples``) and returns the same tidy rollouts table, with a
    different number of samples per (stimulus, point): ``sample`` runs from
    0 to that pair's count − 1. See the module docstring for the rounds.
    """
    stimuli, points, backend = prepare_run(stimuli, params, workers, backend, scheduler)
    run = RunSpec.build(stimuli, points, resolve_queries(stimuli, queries), seed, early_stop, common_random_numbers,
                        as_cache(cache), progress, backend, workers, scheduler, batch_size)
    return run_adaptive(run, target_se, max_samples, min_samples)


def run_adaptive(run: RunSpec, target: float, max_samples: int, min_samples: int = DEFAULT_MIN_SAMPLES
                 ) -> pd.DataFrame:
    """The rounds of :func:`simulate_adaptive` on a checked run (also ``simulate(..., target_se=...)``)."""
    min_samples = min(min_samples, max_samples)
    pairs = run.pairs
    results = run.results(max_samples)
    have = {pair: 0 for pair in pairs}
    goal = {pair: min_samples for pair in pairs}
    fill = run.cached_fill(results, info={"target_se": target})
    bar = progress_bar(0, run.progress)
    try:
        with run.runner as runner:
            while True:
                todo = [pair for pair in pairs if goal[pair] > have[pair]]
                if not todo:
                    break
                ranges = fill.lookup({pair: (have[pair], goal[pair]) for pair in todo})
                bar.total = (bar.total or 0) + sum(r.stop - r.start for r in ranges)
                bar.refresh()
                runner.run(ranges, fill.collect, bar)
                for pair in todo:
                    have[pair] = goal[pair]
                    goal[pair] = next_count(results[pair][0][:have[pair]], target, min_samples, max_samples)
    finally:
        bar.close()
    return run.table(results, have)
