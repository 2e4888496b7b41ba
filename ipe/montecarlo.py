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

import logging
import math
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import InputError
from .noise import NoiseParams, apply_noise
from .queries import evaluate, needs_tracking, parse_query, stop_condition
from .scene import Query, Stimulus, StimulusSet, as_stimulus_set
from .seeding import sample_seed
from .rollout import rollout

PARAM_COLUMNS = list(NoiseParams.names())  # the fields of NoiseParams, in order
ROLLOUT_COLUMNS = PARAM_COLUMNS + ["stimulus_id", "sample", "query", "value", "steps"]
SUMMARY_COLUMNS = ["stimulus_id", "query", "n_samples", "mean", "sd", "se", "n_valid"] + PARAM_COLUMNS
BACKENDS = ("serial", "process", "dask")
#: The fewest rollouts a Dask task carries (except the last task of a run).
DASK_MIN_BATCH = 100


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
    schedule.track = schedule.track or needs_tracking(queries)
    if schedule.track and early_stop and record_every is None:
        schedule.stop_when = stop_condition(queries, stim)  # a landing ends the rollout: same answer, less time
    result = rollout(scene, schedule, early_stop=early_stop, record_every=record_every)
    values = [evaluate(q, result, stim) for q in queries]
    return values, result


@dataclass(frozen=True)
class _Context:
    """What every batch needs besides its sample range (sent to each worker once)."""

    stimuli: tuple
    points: list
    seed: int
    queries: list
    early_stop: bool
    crn: bool
    physics: str = ""


# State each pool worker process holds (sent once, not with every batch).
_STATE: dict = {}


def _init_worker(ctx: _Context) -> None:
    _STATE["ctx"] = ctx


def _run_batch(batch: Batch, ctx: _Context | None = None) -> tuple[Batch, np.ndarray, np.ndarray]:
    """Run the rollouts of one batch: ``(batch, values (n, n_queries), steps (n,))``."""
    ctx = ctx or _STATE["ctx"]
    stim = ctx.stimuli[batch.stimulus]
    params = ctx.points[batch.point]
    qs = ctx.queries[batch.stimulus]
    point_key = 0 if ctx.crn else params.key()
    n = batch.stop - batch.start
    values = np.empty((n, len(qs)), dtype=float)
    steps = np.empty(n, dtype=np.int64)
    for k, sample in enumerate(range(batch.start, batch.stop)):
        vals, res = run_sample(stim, params, ctx.seed, sample, qs, point_key=point_key, early_stop=ctx.early_stop)
        values[k] = vals
        steps[k] = res.steps
    return batch, values, steps


def _run_task(task: tuple[Batch, ...], ctx: _Context | None = None) -> list[tuple[Batch, np.ndarray, np.ndarray]]:
    """Run one task (consecutive batches); on a Dask worker, check it computes the same physics first."""
    ctx = ctx or _STATE["ctx"]
    if ctx.physics:
        from .cache import physics_version

        here = physics_version()
        if here != ctx.physics:
            raise InputError(f"a Dask worker runs physics version {here!r}, the client {ctx.physics!r}; "
                             "install the same ipe, pymunk and numpy on every worker")
    return [_run_batch(b, ctx) for b in task]


def _dask_context(ctx: _Context) -> _Context:
    return ctx


def plan_tasks(pairs: Sequence[tuple[int, int]], n_samples: int, batch_size: int) -> list[tuple[Batch, ...]]:
    """Cut the rollouts of ``pairs`` ((point, stimulus) index pairs, in order) into tasks.

    Each task holds ``batch_size`` consecutive rollouts (the last may hold
    fewer) as one or more :class:`Batch` pieces; a task may span stimuli.
    """
    return plan_range_tasks([Batch(p, s, 0, n_samples) for p, s in pairs], batch_size)


def plan_range_tasks(ranges: Sequence[Batch], batch_size: int) -> list[tuple[Batch, ...]]:
    """Cut sample ranges (one :class:`Batch` per (point, stimulus), in order) into tasks of ``batch_size``."""
    tasks: list[tuple[Batch, ...]] = []
    cur: list[Batch] = []
    room = batch_size
    for r in ranges:
        a = r.start
        while a < r.stop:
            k = min(room, r.stop - a)
            cur.append(Batch(r.point, r.stimulus, a, a + k))
            a += k
            room -= k
            if room == 0:
                tasks.append(tuple(cur))
                cur, room = [], batch_size
    if cur:
        tasks.append(tuple(cur))
    return tasks


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


def dask_batch_size(total: int, workers: int) -> int:
    """Rollouts per Dask task: at least :data:`DASK_MIN_BATCH`, about 8 tasks per worker, at most 1 000."""
    return max(DASK_MIN_BATCH, min(1000, math.ceil(total / (max(1, workers) * 8))))


def simulate(stimuli, params: NoiseParams | Sequence[NoiseParams] = NoiseParams(), n_samples: int = 100,
             seed: int = 0, queries=None, workers: int = 1, backend: str | None = None,
             batch_size: int | None = None, early_stop: bool = True, progress: bool | None = None,
             common_random_numbers: bool = False, scheduler: Any = None, cache: Any = None,
             target_se: float | None = None) -> pd.DataFrame:
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
    if target_se is not None:
        from .adaptive import simulate_adaptive

        return simulate_adaptive(stimuli, params, target_se=target_se, max_samples=n_samples, seed=seed,
                                 queries=queries, workers=workers, backend=backend, batch_size=batch_size,
                                 early_stop=early_stop, progress=progress,
                                 common_random_numbers=common_random_numbers, scheduler=scheduler, cache=cache)
    stimuli, points, n_samples, seed, backend = check_run_args(stimuli, params, n_samples, seed, workers, backend,
                                                               batch_size, scheduler, early_stop)
    qs = _resolve_queries(stimuli, queries)
    from .cache import as_cache

    store = as_cache(cache)
    pairs = [(p, s) for p in range(len(points)) for s in range(len(stimuli))]
    results = {pair: (np.empty((n_samples, len(qs[pair[1]])), dtype=float), np.empty(n_samples, np.int64))
               for pair in pairs}
    fill = CachedFill(stimuli, points, qs, seed, early_stop, common_random_numbers, store, results)
    todo = fill.lookup({pair: (0, n_samples) for pair in pairs})
    if todo:
        ctx = _Context(tuple(stimuli), points, seed, qs, early_stop, common_random_numbers)
        bar = _progress_bar(sum(b.stop - b.start for b in todo), progress)
        try:
            with Runner(ctx, backend, workers, scheduler, batch_size) as runner:
                runner.run(todo, fill.collect, bar)
        finally:
            bar.close()
    return _assemble(stimuli, points, qs, pairs, results, n_samples)


class CachedFill:
    """Rollouts ``[a, z)`` of (point, stimulus) pairs written into ``results`` (a pair → (values, steps)
    arrays): :meth:`lookup` copies in what the cache holds and returns the batches still to run;
    :meth:`collect` (the runner's callback) writes each batch and stores a pair's range in the cache once it
    is complete. Shared by :func:`simulate` (one range, ``[0, n)``) and :func:`ipe.adaptive.simulate_adaptive`
    (one range per round)."""

    def __init__(self, stimuli, points, qs, seed, early_stop, common_random_numbers, store, results,
                 info: dict | None = None):
        self.stimuli, self.points, self.qs, self.seed = stimuli, points, qs, seed
        self.early_stop, self.crn, self.store, self.results = early_stop, common_random_numbers, store, results
        self.info = info or {}
        self.texts = [store.stimulus_text(s) for s in stimuli] if store is not None else []
        self.spans: dict[tuple[int, int], tuple[int, int]] = {}
        self.keys: dict[tuple[int, int], str] = {}
        self.left: dict[tuple[int, int], int] = {}

    def lookup(self, spans: dict[tuple[int, int], tuple[int, int]]) -> list[Batch]:
        """Fill each pair's ``[a, z)`` from the cache where it is stored; the batches to run for the rest."""
        self.spans = spans
        todo = []
        for (p, s), (a, z) in spans.items():
            if self.store is not None:
                pk = 0 if self.crn else self.points[p].key()
                k = self.store.key(self.texts[s], self.points[p], pk, self.seed, a, z, self.qs[s], self.early_stop)
                hit = self.store.get(k, a, z, [q.key for q in self.qs[s]])
                if hit is not None:
                    self.results[(p, s)][0][a:z], self.results[(p, s)][1][a:z] = hit
                    continue
                self.keys[(p, s)] = k
            self.left[(p, s)] = z - a
            todo.append(Batch(p, s, a, z))
        return todo

    def collect(self, b: Batch, vals: np.ndarray, steps: np.ndarray) -> None:
        pair = (b.point, b.stimulus)
        out_vals, out_steps = self.results[pair]
        out_vals[b.start:b.stop] = vals
        out_steps[b.start:b.stop] = steps
        self.left[pair] -= b.stop - b.start
        if self.store is not None and self.left[pair] == 0:
            a, z = self.spans[pair]
            self.store.put(self.keys[pair], a, z, [q.key for q in self.qs[pair[1]]], out_vals[a:z], out_steps[a:z],
                           info={"stimulus_id": self.stimuli[pair[1]].id, "params": self.points[pair[0]].as_dict(),
                                 "seed": self.seed, **self.info})


def check_run_args(stimuli, params, n_samples, seed, workers, backend, batch_size, scheduler, early_stop):
    """Check the arguments every simulation entry point shares, once, where they enter.

    Returns ``(stimuli as a StimulusSet, points as a list, n_samples, seed, backend)``.
    """
    stimuli = as_stimulus_set(stimuli)
    if len(stimuli) == 0:
        raise InputError("no stimuli given")
    if not isinstance(early_stop, (bool, np.bool_)):
        raise InputError(f"early_stop must be True or False, got {early_stop!r}")
    points = [params] if isinstance(params, NoiseParams) else list(params)
    if not points:
        raise InputError("no parameter points given")
    if any(not isinstance(p, NoiseParams) for p in points):
        raise InputError("params must be NoiseParams or a list of NoiseParams")
    seen: set[NoiseParams] = set()
    for p in points:
        if p in seen:  # its rows would be counted twice by summarize
            default = NoiseParams().as_dict()
            changed = {k: v for k, v in p.as_dict().items() if v != default[k]}
            text = ", ".join(f"{k}={v:g}" for k, v in changed.items()) or "no noise"
            raise InputError(f"the parameter point ({text}) is given twice")
        seen.add(p)
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
    if scheduler is not None and backend != "dask":
        raise InputError(f"a scheduler is only used by the dask backend, not {backend!r}")
    return stimuli, points, int(n_samples), int(seed), backend


class Runner:
    """Runs ranges of rollouts on one backend, which starts at the first :meth:`run` and stays up until closed.

    :func:`simulate` runs once; :func:`ipe.adaptive.simulate_adaptive` runs
    round after round on the same process pool or Dask cluster. ``collect(batch,
    values, steps)`` receives every finished batch, in whatever order the
    backend finishes them.
    """

    def __init__(self, ctx: _Context, backend: str, workers: int, scheduler: Any = None,
                 batch_size: int | None = None):
        self.ctx, self.backend, self.workers = ctx, backend, int(workers)
        self.scheduler, self.batch_size = scheduler, batch_size
        self._pool: ProcessPoolExecutor | None = None
        self._client = None
        self._owned: list = []

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        for thing in self._owned:
            try:
                thing.close()
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
        self._owned, self._client = [], None

    def run(self, ranges: Sequence[Batch], collect, bar) -> None:
        """Run the rollouts of ``ranges`` (one :class:`Batch` per (point, stimulus)); never changes results."""
        ranges = [r for r in ranges if r.stop > r.start]
        if not ranges:
            return
        total = sum(r.stop - r.start for r in ranges)
        if self.backend == "serial":
            bs = self.batch_size or max(r.stop - r.start for r in ranges)
            for task in plan_range_tasks(ranges, bs):
                for b, vals, steps in _run_task(task, self.ctx):
                    collect(b, vals, steps)
                    bar.update(b.stop - b.start)
        elif self.backend == "process":
            bs = self.batch_size or default_batch_size(math.ceil(total / len(ranges)), len(ranges), self.workers)
            if self._pool is None:
                self._pool = ProcessPoolExecutor(max_workers=self.workers, initializer=_init_worker,
                                                 initargs=(self.ctx,))
            pending = {self._pool.submit(_run_task, t) for t in plan_range_tasks(ranges, bs)}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    for b, vals, steps in fut.result():
                        collect(b, vals, steps)
                        bar.update(b.stop - b.start)
        else:
            self._run_dask(ranges, total, collect, bar)

    def _run_dask(self, ranges: Sequence[Batch], total: int, collect, bar) -> None:
        from distributed import as_completed

        from .cache import physics_version

        if self._client is None:
            self._client, self._owned = _dask_client(self.scheduler, self.workers)
        client = self._client
        n_workers = max(1, sum(client.nthreads().values())) if self.scheduler is not None else self.workers
        bs = max(DASK_MIN_BATCH, self.batch_size or dask_batch_size(total, n_workers))
        tasks = plan_range_tasks(ranges, bs)
        run = uuid.uuid4().hex[:12]
        c = self.ctx
        ctx = _Context(c.stimuli, c.points, c.seed, c.queries, c.early_stop, c.crn, physics_version())
        # The context is a task (not scattered data): if the worker holding it dies, the scheduler recomputes it.
        ctx_future = client.submit(_dask_context, ctx, key=f"ipe-context-{run}", pure=False)
        futures = [client.submit(_run_task, t, ctx_future, key=f"ipe-rollouts-{run}-{i}", pure=False)
                   for i, t in enumerate(tasks)]
        for fut in as_completed(futures, loop=client.loop):
            for b, vals, steps in fut.result():
                collect(b, vals, steps)
                bar.update(b.stop - b.start)
            fut.release()
        ctx_future.release()


#: Dask settings for the LocalCluster ipe starts: slower housekeeping timers and no statistical profiler.
#: An idle two-worker cluster then uses about 0.01 instead of 0.08 CPU-seconds per second, time the
#: rollouts get instead. (They only feed Dask's dashboard and event-loop diagnostics.)
LOCAL_CLUSTER_CONFIG = {
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.worker.profile.enabled": False,
}


def _dask_client(scheduler: Any, workers: int):
    """``(client, things to close)`` for a scheduler address, Client, cluster object or ``None`` (LocalCluster)."""
    try:
        import distributed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise InputError("the dask backend needs the 'distributed' package (pip install distributed)") from None
    if scheduler is None:
        import dask

        with dask.config.set(LOCAL_CLUSTER_CONFIG):
            cluster = distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                                               dashboard_address=":0", silence_logs=logging.ERROR)
            client = distributed.Client(cluster, set_as_default=False)
        return client, [client, cluster]
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    if hasattr(scheduler, "scheduler_address") or isinstance(scheduler, str):
        if isinstance(scheduler, str) and not scheduler.strip():
            raise InputError("the Dask scheduler address is empty")
        if isinstance(scheduler, str):
            # a malformed address fails here, before a Client exists (a half-made Client waits 60 s to close)
            from distributed.comm import get_address_host_port

            addr = scheduler.strip()
            try:
                get_address_host_port(addr if "://" in addr else "tcp://" + addr)
            except (ValueError, TypeError) as exc:
                raise InputError(f"{scheduler!r} is not a Dask scheduler address ({exc}); expected e.g. "
                                 "tcp://10.0.0.5:8786") from None
        try:
            client = distributed.Client(scheduler, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"cannot connect to the Dask scheduler {scheduler!r} ({' '.join(str(exc).split())})"
                             ) from None
        return client, [client]
    raise InputError(f"scheduler must be an address, a distributed.Client or a cluster, got "
                     f"{type(scheduler).__name__}")


def _assemble(stimuli: StimulusSet, points, qs, pairs, results, n_samples) -> pd.DataFrame:
    """The tidy rollouts table, rows in (point, stimulus, sample, query) order.

    ``n_samples`` is one count for every pair or a dict (point, stimulus) → count (adaptive runs); a pair's
    arrays in ``results`` may be longer than its count.
    """
    if not pairs:  # pragma: no cover - simulate always has pairs
        return pd.DataFrame({c: [] for c in ROLLOUT_COLUMNS})
    counts = np.array([n_samples[pair] if isinstance(n_samples, dict) else n_samples for pair in pairs],
                      dtype=np.int64)
    nq = np.array([len(qs[s]) for _, s in pairs])
    rows = counts * nq
    point_idx = np.repeat([p for p, _ in pairs], rows)
    stim_idx = np.repeat([s for _, s in pairs], rows)
    cols: dict[str, Any] = {}
    for c in PARAM_COLUMNS:
        cols[c] = np.array([pt.as_dict()[c] for pt in points], dtype=float)[point_idx]
    ids = np.empty(len(stimuli), dtype=object)
    ids[:] = [s.id for s in stimuli]
    cols["stimulus_id"] = ids[stim_idx]
    cols["sample"] = np.concatenate([np.repeat(np.arange(n, dtype=np.int64), k) for n, k in zip(counts, nq)])
    qkeys = [[q.key for q in qs[s]] for s in range(len(stimuli))]
    query = np.empty(int(rows.sum()), dtype=object)
    pos = 0
    for (_, s), n, r in zip(pairs, counts, rows):
        query[pos:pos + r] = qkeys[s] * int(n)
        pos += r
    cols["query"] = query
    cols["value"] = np.concatenate([results[pair][0][:n].reshape(-1) for pair, n in zip(pairs, counts)]).astype(float)
    cols["steps"] = np.concatenate([np.repeat(results[pair][1][:n], k)
                                    for pair, n, k in zip(pairs, counts, nq)]).astype(np.int64)
    return pd.DataFrame(cols, columns=ROLLOUT_COLUMNS)


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
    import dataclasses

    if not isinstance(group, NoiseParams):
        raise InputError("group must be NoiseParams")
    population = list(population)
    if not population:
        raise InputError("the population is empty")
    if simulate_kwargs.get("target_se") is not None:
        raise InputError("target_se does not work with a population (every participant gets the same rollouts)")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
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


def _progress_bar(total: int, progress: bool | None):
    from .progress import progress_bar  # a bar in a terminal; with progress=True, plain lines elsewhere

    return progress_bar(total, progress, desc="simulating", unit="rollout")


def iter_points(sigma: Iterable[float] = (0.0,), phi: Iterable[float] = (0.0,), mu: Iterable[float] = (0.0,),
                **fixed) -> list[NoiseParams]:
    """The grid of :class:`NoiseParams` over the given σ, φ, μ values."""
    return [NoiseParams(sigma=s, phi=f, mu=m, **fixed) for s in sigma for f in phi for m in mu]
