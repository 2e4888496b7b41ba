"""Many seeded noisy rollouts per stimulus, in batches, on one or more processes.

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

Output tables
-------------
*Rollouts* (one row per rollout and query): the noise parameters
(``sigma, phi, mu, angle_sigma, push_duration``), ``stimulus_id``,
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

import math
import os
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .noise import NoiseParams, apply_noise
from .queries import evaluate, parse_query
from .scene import Query, Stimulus, StimulusSet, as_stimulus_set
from .seeding import sample_seed
from .world import rollout

PARAM_COLUMNS = ["sigma", "phi", "mu", "angle_sigma", "push_duration"]
ROLLOUT_COLUMNS = PARAM_COLUMNS + ["stimulus_id", "sample", "query", "value", "steps"]
SUMMARY_COLUMNS = ["stimulus_id", "query", "n_samples", "mean", "sd", "se", "n_valid"] + PARAM_COLUMNS
BACKENDS = ("serial", "process")


@dataclass(frozen=True)
class Batch:
    point: int
    stimulus: int
    start: int
    stop: int


def run_sample(stim: Stimulus, params: NoiseParams, seed: int, sample: int, queries: Sequence[Query],
               point_key: int | None = None, early_stop: bool = True, record_every: int | None = None):
    """One noisy rollout of ``stim``: returns ``(values, rollout_result)``.

    ``values`` has one float per query. ``point_key`` defaults to
    ``params.key()``; give a constant for common random numbers across points.
    """
    key = params.key() if point_key is None else point_key
    ss = sample_seed(seed, stim.id, key, sample)
    scene, schedule = apply_noise(stim, params.sources(), ss)
    result = rollout(scene, schedule, early_stop=early_stop, record_every=record_every)
    values = [evaluate(q, result, stim) for q in queries]
    return values, result


# State each worker process holds (sent once, not with every batch).
_STATE: dict = {}


def _init_worker(stimuli, points, seed, queries, early_stop, common_random_numbers):
    _STATE.update(stimuli=stimuli, points=points, seed=seed, queries=queries, early_stop=early_stop,
                  crn=common_random_numbers)


def _run_batch(batch: Batch) -> tuple[Batch, np.ndarray, np.ndarray]:
    st = _STATE
    stim = st["stimuli"][batch.stimulus]
    params = st["points"][batch.point]
    qs = st["queries"][batch.stimulus]
    point_key = 0 if st["crn"] else params.key()
    n = batch.stop - batch.start
    values = np.empty((n, len(qs)), dtype=float)
    steps = np.empty(n, dtype=np.int64)
    for k, sample in enumerate(range(batch.start, batch.stop)):
        vals, res = run_sample(stim, params, st["seed"], sample, qs, point_key=point_key,
                               early_stop=st["early_stop"])
        values[k] = vals
        steps[k] = res.steps
    return batch, values, steps


def _resolve_queries(stimuli: StimulusSet, queries) -> list[list[Query]]:
    from .queries import check_query

    if queries is None:
        for s in stimuli:
            try:
                check_query(s.query, s.scene)
            except InputError as exc:
                raise exc.prefixed(f"stimulus {s.id!r}: query {s.query.key!r}") from None
        return [[s.query] for s in stimuli]
    if isinstance(queries, (str, Query, dict)):
        queries = [queries]
    qs = [parse_query(q) for q in queries]
    if not qs:
        raise InputError("no queries given")

    for s in stimuli:
        for q in qs:
            try:
                check_query(q, s.scene)
            except InputError as exc:
                raise exc.prefixed(f"stimulus {s.id!r}: query {q.key!r}") from None
    return [qs for _ in stimuli]


def default_batch_size(n_samples: int, n_tasks_hint: int, workers: int) -> int:
    """Batches big enough to amortise task overhead, small enough to balance load."""
    if workers <= 1:
        return max(1, n_samples)
    per_worker = max(1, math.ceil(n_samples * n_tasks_hint / (workers * 8)))
    return max(1, min(n_samples, 100, per_worker))


def simulate(stimuli, params: NoiseParams | Sequence[NoiseParams] = NoiseParams(), n_samples: int = 100,
             seed: int = 0, queries=None, workers: int = 1, backend: str | None = None,
             batch_size: int | None = None, early_stop: bool = True, progress: bool | None = None,
             common_random_numbers: bool = False) -> pd.DataFrame:
    """Run ``n_samples`` noisy rollouts of every stimulus at every parameter point.

    Parameters
    ----------
    stimuli:
        A :class:`~ipe.scene.StimulusSet`, a list of stimuli, or a path.
    params:
        One :class:`~ipe.noise.NoiseParams` or a list of them (a grid).
    queries:
        ``None`` asks each stimulus its own query; otherwise a query name,
        ``"name:key=value"`` text, a :class:`~ipe.scene.Query`, or a list.
    workers, backend:
        ``backend="serial"`` or ``"process"`` (a local process pool); by
        default serial for one worker, a process pool otherwise.
    common_random_numbers:
        Use the same seeds at every parameter point (for emulators on grids).
    progress:
        Show a progress bar; ``None`` shows one when stderr is a terminal.

    Returns the tidy rollouts table described in the module docstring.
    """
    stimuli = as_stimulus_set(stimuli)
    points = [params] if isinstance(params, NoiseParams) else list(params)
    if not points:
        raise InputError("no parameter points given")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise InputError(f"workers must be a positive integer, got {workers!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                   or batch_size < 1):
        raise InputError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    backend = backend or ("serial" if workers == 1 else "process")
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    qs = _resolve_queries(stimuli, queries)
    bs = batch_size or default_batch_size(n_samples, len(stimuli) * len(points), workers)
    batches = [Batch(p, s, a, min(a + bs, n_samples))
               for p in range(len(points)) for s in range(len(stimuli)) for a in range(0, n_samples, bs)]
    total = len(points) * len(stimuli) * n_samples
    results: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
    init_args = (tuple(stimuli), points, int(seed), qs, early_stop, common_random_numbers)

    bar = _progress_bar(total, progress)
    try:
        if backend == "serial":
            _init_worker(*init_args)
            for b in batches:
                _, vals, steps = _run_batch(b)
                results[(b.point, b.stimulus, b.start)] = (vals, steps)
                bar.update(b.stop - b.start)
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=init_args) as pool:
                pending = {pool.submit(_run_batch, b) for b in batches}
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        b, vals, steps = fut.result()
                        results[(b.point, b.stimulus, b.start)] = (vals, steps)
                        bar.update(b.stop - b.start)
    finally:
        bar.close()
    return _assemble(stimuli, points, qs, batches, results)


def _assemble(stimuli: StimulusSet, points, qs, batches, results) -> pd.DataFrame:
    cols: dict[str, list] = {c: [] for c in ROLLOUT_COLUMNS}
    for b in batches:  # batches are already in (point, stimulus, sample) order
        vals, steps = results[(b.point, b.stimulus, b.start)]
        p = points[b.point].as_dict()
        sid = stimuli[b.stimulus].id
        keys = [q.key for q in qs[b.stimulus]]
        for k, sample in enumerate(range(b.start, b.stop)):
            for j, qk in enumerate(keys):
                for c in PARAM_COLUMNS:
                    cols[c].append(p[c])
                cols["stimulus_id"].append(sid)
                cols["sample"].append(sample)
                cols["query"].append(qk)
                cols["value"].append(float(vals[k, j]))
                cols["steps"].append(int(steps[k]))
    df = pd.DataFrame(cols, columns=ROLLOUT_COLUMNS)
    df["sample"] = df["sample"].astype("int64")
    df["steps"] = df["steps"].astype("int64")
    return df


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


def _progress_bar(total: int, progress: bool | None):
    from tqdm.auto import tqdm

    disable = (not sys.stderr.isatty()) if progress is None else (not progress)
    if os.environ.get("IPE_NO_PROGRESS"):
        disable = True
    return tqdm(total=total, unit="rollout", desc="simulating", disable=disable, leave=False,
                dynamic_ncols=True, mininterval=0.2)


def iter_points(sigma: Iterable[float] = (0.0,), phi: Iterable[float] = (0.0,), mu: Iterable[float] = (0.0,),
                **fixed) -> list[NoiseParams]:
    """The grid of :class:`NoiseParams` over the given σ, φ, μ values."""
    return [NoiseParams(sigma=s, phi=f, mu=m, **fixed) for s in sigma for f in phi for m in mu]
