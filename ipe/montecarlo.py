"""Many seeded noisy rollouts per stimulus, in batches, on one or more processes: the tables.

:func:`simulate` is the public entry point (:func:`summarize` and
:func:`predict_population` build on it); the batches, backends and the cache
fill are in :mod:`ipe.runner`, adaptive sample counts in :mod:`ipe.adaptive`.
The unit of work is a *batch*: one stimulus, one parameter point, a range of
sample indices. Every rollout's seed comes from
:func:`ipe.seeding.sample_seed` ``(seed, stimulus id, point key, sample
index)``, so the table is the same whichever backend runs it and however
many workers it uses; rows are always put back in (point, stimulus, sample)
order.

Backends
--------
``"serial"``
    Everything in this process (the default for ``workers=1``).
``"process"``
    A local :class:`concurrent.futures.ProcessPoolExecutor` with ``workers``
    processes (the default for ``workers > 1``).
``"dask"``
    A Dask ``distributed`` cluster: a :class:`distributed.LocalCluster` of
    ``workers`` single-threaded processes when no ``scheduler`` is given,
    otherwise the cluster behind that scheduler address (or
    :class:`distributed.Client`). Tasks carry at least
    :data:`DASK_MIN_BATCH` rollouts (a rollout takes a few ms, a Dask task
    costs about a millisecond of scheduling), the stimuli and parameter
    points travel to the workers once (as one task's result that every batch
    depends on), and a worker lost mid-run only costs its unfinished batches,
    which the scheduler runs again elsewhere; the table is the same bytes.
    One progress bar counts the rollouts finished anywhere on the cluster.

With ``cache=`` (a directory, ``True`` for the default one, or a
:class:`~ipe.cache.SimulationCache`) every (stimulus, parameter point) is
looked up in the content-addressed rollout cache first and stored there once
computed, so refits and repeated sweeps reuse rollouts (see :mod:`ipe.cache`).

Output tables
-------------
*Rollouts* (one row per rollout and query): the noise parameters
(:data:`PARAM_COLUMNS`, the fields of :class:`~ipe.noise.NoiseParams`), ``stimulus_id``,
``sample``, ``query``, ``value`` and ``steps`` (physics steps run; fewer than
the horizon when the rollout stopped early).

*Summary* (one row per stimulus, query and parameter point), from
:func:`summarize`: ``stimulus_id, query, n_samples, mean, sd, se, n_valid``
and the noise parameters. ``mean`` is the expected answer in the query's own
units; ``se = sd / sqrt(n_valid)`` is its Monte Carlo standard error;
``n_valid`` counts rollouts whose value was defined (e.g. ``falls_left`` is
undefined when nothing fell).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .adaptive import run_adaptive
from .cache import as_cache
from .errors import InputError
from .noise import NoiseParams
from .runner import (  # re-exported: ipe.montecarlo is the public home of these names
    BACKENDS,
    DASK_MIN_BATCH,
    LOCAL_CLUSTER_CONFIG,
    PARAM_COLUMNS,
    ROLLOUT_COLUMNS,
    RUN_RULES,
    Batch,
    RunSpec,
    dask_batch_size,
    plan_tasks,
    prepare_run,
    progress_bar,
    resolve_queries,
    run_sample,
)
from .validation import POSITIVE_INT, Optional, POSITIVE_NUMBER, validate_params

SUMMARY_COLUMNS = ["stimulus_id", "query", "n_samples", "mean", "sd", "se", "n_valid"] + PARAM_COLUMNS


@validate_params(n_samples=POSITIVE_INT, target_se=Optional(POSITIVE_NUMBER), **RUN_RULES)
def simulate(stimuli, params: NoiseParams | Sequence[NoiseParams] = NoiseParams(), n_samples: int = 100,
             seed: int = 0, queries=None, workers: int = 1, backend: str | None = None,
             batch_size: int | None = None, early_stop: bool = True, progress: bool | None = None,
             common_random_numbers: bool = False, scheduler: Any = None, cache: Any = None,
             target_se: float | None = None) -> pd.DataFrame:
    """Run ``n_samples`` noisy rollouts of every stimulus at every parameter point.

    Parameters
    ----------
    stimuli:
        A :class:`~ipe.checks.StimulusSet`, a list of stimuli, or a path.
    params:
        One :class:`~ipe.noise.NoiseParams` or a list of them (a grid).
    queries:
        ``None`` asks each stimulus its own query; otherwise a query name,
        ``"name:key=value"`` text, a :class:`~ipe.scene.Query`, or a list.
    workers, backend:
        ``backend="serial"``, ``"process"`` (a local process pool) or
        ``"dask"``; by default serial for one worker, a process pool
        otherwise. For ``"dask"`` without a ``scheduler``, ``workers`` is
        the size of the :class:`distributed.LocalCluster` started for the run.
    scheduler:
        Dask only: a scheduler address (``"tcp://host:8786"``), a
        :class:`distributed.Client` or a cluster object (e.g. a
        ``dask_jobqueue.SLURMCluster``). ``None`` starts a LocalCluster.
    batch_size:
        Rollouts per task (Dask: at least :data:`DASK_MIN_BATCH`); never
        changes results.
    cache:
        ``None`` (no cache), ``True`` (the default directory), a directory,
        or a :class:`~ipe.cache.SimulationCache`.
    common_random_numbers:
        Use the same seeds at every parameter point (for emulators on grids).
    progress:
        Show a progress bar; ``None`` shows one when stderr is a terminal.
    target_se:
        Adaptive sample counts (opt-in): draw samples for each stimulus and
        point in rounds until every query's Monte Carlo standard error is at
        most ``target_se``, with ``n_samples`` as the cap; see
        :func:`ipe.adaptive.simulate_adaptive`. ``None`` (the default) runs
        exactly ``n_samples``.

    Returns
    -------
    pandas.DataFrame
        The tidy rollouts table described in the module docstring; it
        does not depend on the backend, the workers, the batches or the cache.
    """
    stimuli, points, backend = prepare_run(stimuli, params, workers, backend, scheduler)
    run = RunSpec.build(stimuli, points, resolve_queries(stimuli, queries), seed, early_stop, common_random_numbers,
                        as_cache(cache), progress, backend, workers, scheduler, batch_size)
    if target_se is not None:
        return run_adaptive(run, target=target_se, max_samples=n_samples)
    return _run_fixed(run, n_samples)


def _run_fixed(run: RunSpec, n_samples: int) -> pd.DataFrame:
    """``n_samples`` rollouts of every (point, stimulus) pair: what the cache holds, then the rest on the runner."""
    results = run.results(n_samples)
    fill = run.cached_fill(results)
    todo = fill.lookup({pair: (0, n_samples) for pair in run.pairs})
    if todo:
        bar = progress_bar(sum(b.stop - b.start for b in todo), run.progress)
        try:
            with run.runner as runner:
                runner.run(todo, fill.collect, bar)
        finally:
            bar.close()
    return run.table(results, n_samples)


def summarize(rollouts: pd.DataFrame) -> pd.DataFrame:
    """Per-stimulus summary (mean, sd, Monte Carlo se) of a rollouts table.

    Rows keep the order in which stimuli, queries and points first appear.
    """
    missing = [c for c in ("stimulus_id", "query", "value") if c not in rollouts.columns]
    if missing:
        raise InputError(f"rollouts table lacks column(s) {', '.join(missing)}")
    if rollouts.empty:
        raise InputError("rollouts table is empty")
    params = [c for c in PARAM_COLUMNS if c in rollouts.columns]
    keys = params + ["stimulus_id", "query"]
    rows = []
    for key, g in rollouts.groupby(keys, sort=False):
        v = g["value"].to_numpy(dtype=float)
        ok = v[~np.isnan(v)]
        n_valid = len(ok)
        mean = float(ok.mean()) if n_valid else math.nan
        sd = float(ok.std(ddof=1)) if n_valid > 1 else (0.0 if n_valid == 1 else math.nan)
        se = sd / math.sqrt(n_valid) if n_valid else math.nan
        row = dict(zip(keys, key))
        row.update(n_samples=len(v), mean=mean, sd=sd, se=se, n_valid=n_valid)
        rows.append(row)
    out = pd.DataFrame(rows)
    cols = [c for c in SUMMARY_COLUMNS if c in out.columns]
    return out[cols].reset_index(drop=True)


@validate_params(n_samples=POSITIVE_INT)
def predict_population(stimuli, group: NoiseParams, population: Sequence[dict[str, float]], n_samples: int = 100,
                       seed: int = 0, **simulate_kwargs: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mean judgment of a population of simulators, one per participant.

    Every participant's noise values (``population``, e.g. the rows of
    :func:`ipe.inference.load_population`) replace those fields of ``group``;
    each participant gets ``ceil(n_samples / len(population))`` rollouts, so a
    stimulus gets at least ``n_samples`` in all (fewer only when participants
    coincide, see below). The summary pools all
    rollouts with equal weight per participant: one row per stimulus and
    query, the noise columns holding ``group``, plus ``participants``. This is
    what the mean over the same participants' answers estimates; with a
    nonlinear simulator it differs from the judgment at ``group`` whenever the
    participants differ. Participants with identical values share their
    rollouts (same seeds) and count once per participant in the weights.

    Returns ``(summary, rollouts)``; ``rollouts`` keeps each point's own values.
    ``simulate_kwargs`` go to :func:`simulate` (workers, backend, cache, …).
    """
    if not isinstance(group, NoiseParams):
        raise InputError("group must be NoiseParams")
    population = list(population)
    if not population:
        raise InputError("the population is empty")
    if simulate_kwargs.get("target_se") is not None:
        raise InputError("target_se does not work with a population (every participant gets the same rollouts)")
    weights: dict[NoiseParams, int] = {}
    for values in population:
        unknown = [k for k in values if k not in PARAM_COLUMNS]
        if unknown:
            raise InputError(f"unknown noise parameter {unknown[0]!r} in the population")
        point = dataclasses.replace(group, **{k: float(v) for k, v in values.items()})
        weights[point] = weights.get(point, 0) + 1
    points = list(weights)
    per = -(-n_samples // len(population))
    rollouts = simulate(stimuli, points, n_samples=per, seed=seed, **simulate_kwargs)
    # simulate puts rows back in (point, stimulus, sample, query) order, an equal block per point
    w = np.repeat(np.array(list(weights.values()), dtype=float), len(rollouts) // len(points))
    rows = []
    frame = rollouts.assign(_w=w)
    for (sid, q), g in frame.groupby(["stimulus_id", "query"], sort=False):
        v = g["value"].to_numpy(dtype=float)
        ok = ~np.isnan(v)
        n_valid = int(ok.sum())
        if n_valid:
            ww = g["_w"].to_numpy()[ok]
            mean = float(np.average(v[ok], weights=ww))
            var = float(np.average((v[ok] - mean) ** 2, weights=ww)) * (n_valid / (n_valid - 1) if n_valid > 1 else 0)
            sd = math.sqrt(var)
        else:
            mean = sd = math.nan
        se = sd / math.sqrt(n_valid) if n_valid else math.nan
        rows.append({"stimulus_id": sid, "query": q, "n_samples": len(v), "mean": mean, "sd": sd, "se": se,
                     "n_valid": n_valid, **group.as_dict(), "participants": len(population)})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS + ["participants"]), rollouts



def iter_points(sigma: Iterable[float] = (0.0,), phi: Iterable[float] = (0.0,), mu: Iterable[float] = (0.0,),
                **fixed) -> list[NoiseParams]:
    """The grid of :class:`NoiseParams` over the given σ, φ, μ values."""
    return [NoiseParams(sigma=s, phi=f, mu=m, **fixed) for s in sigma for f in phi for m in mu]


__all__ = ["simulate", "summarize", "predict_population", "iter_points", "run_sample", "Batch", "plan_tasks",
           "dask_batch_size", "BACKENDS", "DASK_MIN_BATCH", "LOCAL_CLUSTER_CONFIG", "PARAM_COLUMNS", "ROLLOUT_COLUMNS",
           "SUMMARY_COLUMNS"]
