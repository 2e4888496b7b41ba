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

Rollouts that run the same physics (:func:`ipe.runner.same_physics_key`: at
points where the force push is the only noise, e.g. the σ = 0 row of a
sweep, a sample's only draw is the push's direction) are simulated once per
pair across all its rounds (:class:`SharedAcrossRounds`), not once per round:
a later round copies the values and steps of an earlier sample with the same
key. The rollout is a deterministic function of that key, so the table is
the same bytes as if each had been simulated.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .cache import as_cache
from .noise import ForceNoise, NoiseParams
from .runner import (RUN_RULES, Batch, RunSpec, prepare_run, prepare_sample, progress_bar, resolve_queries,
                     same_physics_key)
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


class SharedAcrossRounds:
    """Later rounds' rollouts that run the same physics as an earlier one of their pair: copied, not simulated.

    Within one batch the runner already simulates each distinct
    :func:`~ipe.runner.same_physics_key` once. A pair's later rounds would
    run its (at most two, at σ = 0) distinct rollouts again; :meth:`plan`
    keeps from each round's ranges only the samples whose key the pair has
    not met (the first sample of each new key), fills the others from the
    earlier sample with that key, and returns a ``collect`` that also fills
    the samples waiting on a key first met in this round. Keys are computed
    here, with the worker's own :func:`~ipe.runner.prepare_sample`, only for
    pairs at points whose every noise source is the force push and only from
    their second round on. Which rollouts run depends on the seeds alone, so
    the table stays independent of backend, worker count and batch size.
    """

    def __init__(self, run: RunSpec, results: dict):
        self.run, self.results = run, results
        self.point_ok = [all(isinstance(src, ForceNoise) for src in p.sources()) for p in run.points]
        self.point_key = [0 if run.crn else p.key() for p in run.points]
        self.keys: dict[tuple[int, int], list] = {}  # a pair's sample keys, computed as far as needed
        self.known: dict[tuple[int, int], dict] = {}  # a pair's key -> (values row, steps) of an earlier sample
        self.learned: dict[tuple[int, int], int] = {}  # samples [0, n) of a pair are in ``known``
        self.copied = 0  # samples filled without a rollout (for benchmarks)

    def key(self, pair: tuple[int, int], k: int):
        keys = self.keys.setdefault(pair, [])
        p, s = pair
        stim, params, qs = self.run.stimuli[s], self.run.points[p], self.run.queries[s]
        while len(keys) <= k:
            scene, schedule = prepare_sample(stim, params, self.run.seed, len(keys), qs, self.point_key[p],
                                             self.run.early_stop)
            keys.append(same_physics_key(stim, params, scene, schedule))
        return keys[k]

    def _learn(self, pair: tuple[int, int], upto: int) -> None:
        known = self.known.setdefault(pair, {})
        vals, steps = self.results[pair]
        for k in range(self.learned.get(pair, 0), upto):
            key = self.key(pair, k)
            if key is not None and key not in known:
                known[key] = (vals[k].copy(), int(steps[k]))
        self.learned[pair] = max(upto, self.learned.get(pair, 0))

    def plan(self, ranges: list[Batch], collect, bar) -> tuple[list[Batch], Any]:
        """``(the batches still to simulate, a collect callback)`` for one round's ``ranges``."""
        todo: list[Batch] = []
        first: dict = {}  # (pair, key) -> the sample of this round that simulates it
        waiting: dict = {}  # (pair, key) -> samples of this round that copy it
        for r in ranges:
            pair = (r.point, r.stimulus)
            if r.start == 0 or not self.point_ok[r.point]:
                todo.append(r)
                continue
            self._learn(pair, r.start)
            known = self.known[pair]
            run_from = None
            for k in range(r.start, r.stop + 1):
                key = self.key(pair, k) if k < r.stop else None
                run_it = k < r.stop and (key is None or key not in known and (pair, key) not in first)
                if run_it and key is not None:
                    first[(pair, key)] = k
                if run_it and run_from is None:
                    run_from = k
                elif not run_it and run_from is not None:
                    todo.append(Batch(r.point, r.stimulus, run_from, k))
                    run_from = None
                if k == r.stop or run_it:
                    continue
                if key in known:
                    vals, steps = known[key]
                    collect(Batch(r.point, r.stimulus, k, k + 1), vals[None, :], np.array([steps], np.int64))
                    bar.update(1)
                else:
                    waiting.setdefault((pair, key), []).append(k)
                self.copied += 1

        def collect_and_copy(b: Batch, vals: np.ndarray, steps: np.ndarray) -> None:
            collect(b, vals, steps)
            pair = (b.point, b.stimulus)
            if not waiting or pair not in self.keys:
                return
            for j, k in enumerate(range(b.start, b.stop)):
                for w in waiting.pop((pair, self.keys[pair][k]), ()):
                    collect(Batch(b.point, b.stimulus, w, w + 1), vals[j:j + 1], steps[j:j + 1])
                    bar.update(1)

        return todo, collect_and_copy


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
    shared = SharedAcrossRounds(run, results)
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
                ranges, collect = shared.plan(ranges, fill.collect, bar)
                runner.run(ranges, collect, bar)
                for pair in todo:
                    have[pair] = goal[pair]
                    goal[pair] = next_count(results[pair][0][:have[pair]], target, min_samples, max_samples)
    finally:
        bar.close()
    return run.table(results, have)
