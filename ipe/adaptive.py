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

from .errors import InputError
from .montecarlo import CachedFill, Runner, _assemble, _Context, _progress_bar, _resolve_queries, check_run_args
from .noise import NoiseParams

DEFAULT_MIN_SAMPLES = 16


def check_target_se(value: Any, what: str = "target_se") -> float:
    """The one rule for a target standard error: a finite number > 0."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise InputError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)


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
    target = check_target_se(target_se)
    stimuli, points, max_samples, seed, backend = check_run_args(stimuli, params, max_samples, seed, workers, backend,
                                                                 batch_size, scheduler, early_stop)
    if isinstance(min_samples, bool) or not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
        raise InputError(f"min_samples must be a positive integer, got {min_samples!r}")
    min_samples = min(int(min_samples), max_samples)
    qs = _resolve_queries(stimuli, queries)
    from .cache import as_cache

    store = as_cache(cache)
    pairs = [(p, s) for p in range(len(points)) for s in range(len(stimuli))]
    results = {pair: (np.empty((max_samples, len(qs[pair[1]])), dtype=float), np.empty(max_samples, np.int64))
               for pair in pairs}
    have = {pair: 0 for pair in pairs}
    goal = {pair: min(min_samples, max_samples) for pair in pairs}
    fill = CachedFill(stimuli, points, qs, seed, early_stop, common_random_numbers, store, results,
                      info={"target_se": target})
    ctx = _Context(tuple(stimuli), points, seed, qs, early_stop, common_random_numbers)
    bar = _progress_bar(0, progress)
    try:
        with Runner(ctx, backend, workers, scheduler, batch_size) as runner:
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
    return _assemble(stimuli, points, qs, pairs, results, have)
