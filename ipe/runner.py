"""Running seeded rollouts in batches on one backend (serial, a local process pool or a Dask cluster).

The unit of work is a *batch* (:class:`Batch`): one stimulus, one parameter
point, a range of sample indices. :func:`run_sample` is one noisy rollout,
seeded by :func:`ipe.seeding.sample_seed` ``(seed, stimulus id, point key,
sample index)``, so what a batch returns does not depend on where it runs.
:class:`Runner` runs batches on a backend and hands each finished one to a
callback; :class:`CachedFill` is that callback when results go through the
rollout cache; :func:`assemble_rollouts` puts the results back in (point,
stimulus, sample) order as the tidy rollouts table. The public entry points
that use them are :func:`ipe.montecarlo.simulate` and
:func:`ipe.adaptive.simulate_adaptive`; they check their arguments once
(:func:`prepare_run`) and everything here trusts them.
"""

from __future__ import annotations

import logging
import math
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .cache import physics_version
from .errors import InputError
from .noise import ForceNoise, NoiseParams, RemovalNoise, apply_noise
from .progress import progress_bar as _bar
from .queries import check_query, evaluate, final_condition, needs_tracking, parse_query, stop_condition
from .rollout import rollout
from .checks import StimulusSet
from .scene import Query, Stimulus
from .scenefile import as_stimulus_set
from .seeding import sample_seed
from .validation import BOOL, POSITIVE_INT, SEED, Optional

PARAM_COLUMNS = list(NoiseParams.names())  # the fields of NoiseParams, in order
ROLLOUT_COLUMNS = PARAM_COLUMNS + ["stimulus_id", "sample", "query", "value", "steps"]
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
    scene, schedule = prepare_sample(stim, params, seed, sample, queries, point_key, early_stop, record_every)
    result = rollout(scene, schedule, early_stop=early_stop, record_every=record_every)
    values = [evaluate(q, result, stim) for q in queries]
    return values, result


def prepare_sample(stim: Stimulus, params: NoiseParams, seed: int, sample: int, queries: Sequence[Query],
                   point_key: int | None = None, early_stop: bool = True, record_every: int | None = None):
    """The noisy scene and the schedule of one rollout (what :func:`run_sample` simulates)."""
    key = params.key() if point_key is None else point_key
    ss = sample_seed(seed, stim.id, key, sample)
    scene, schedule = apply_noise(stim, params.sources(), ss)
    schedule.track = schedule.track or needs_tracking(queries)
    if schedule.track and early_stop and record_every is None:
        schedule.stop_when = stop_condition(queries, stim)  # a landing ends the rollout: same answer, less time
    elif early_stop and record_every is None:
        schedule.final_when = final_condition(queries, stim)  # answer-aware stop: same answers, less time
    return scene, schedule


def same_physics_key(stim: Stimulus, params: NoiseParams, scene, schedule, empty_kick: bool = False):
    """A key that two rollouts of ``stim`` share exactly when they run the same physics, or ``None``.

    A rollout is a deterministic function of its scene and schedule (a fresh
    world each time). When the only active noise source is the force push
    (or none is), the scene is the stimulus's own and the schedule differs
    only in the push (its direction is ±1), so samples repeat: at σ = 0 a
    whole point of the BHT sweep runs two distinct rollouts per tower, at
    no noise one. The key holds the push, so it is valid across parameter
    points too. Any other source draws continuous values (or acts during
    the rollout), so its rollouts are never shared: ``None``.

    The removal kick (:class:`~ipe.noise.RemovalNoise`) is the exception that
    ``empty_kick`` names: with only the push and the kick active, the world up
    to the removal is the stimulus's own in every sample (the push starts at
    the removal), so whether the kick finds anything resting on the removed
    body is a fact of the stimulus; where it finds nothing (``empty_kick``,
    learnt from one rollout: :func:`kick_was_empty`) it changes nothing, and
    the rollout is the one without it.
    """
    allowed = (ForceNoise, RemovalNoise) if empty_kick else (ForceNoise,)
    if scene is not stim.scene or schedule.hooks or (schedule.on_remove and not empty_kick) or \
            not all(isinstance(s, allowed) for s in params.sources()):
        return None
    return (schedule.gravity_from, schedule.gravity_until)


def kick_was_empty(schedule) -> bool | None:
    """After a rollout: ``True`` when every removal kick of ``schedule`` found nothing to kick, ``False`` when
    one found something, ``None`` when the schedule has no kick (or it never ran)."""
    found = [getattr(h, "kicked", None) for h in schedule.on_remove]
    if not found or any(f is None for f in found):
        return None
    return not any(found)


@dataclass(frozen=True)

class RunContext:
    """What every batch needs besides its sample range (sent to each worker once)."""

    stimuli: tuple
    points: list
    seed: int
    queries: list
    early_stop: bool
    crn: bool
    physics: str = ""
    #: What this process has learnt while running batches of this context: the rollouts that provably run the same
    #: physics, ``(stimulus, same_physics_key) → (values, steps)``, and ``("empty_kick", stimulus) → bool``. Each
    #: worker keeps its own copy; entries are exact, so results do not depend on which worker ran what.
    shared: dict = field(default_factory=dict, compare=False, hash=False, repr=False)


# State each pool worker process holds (sent once, not with every batch).
_STATE: dict = {}


def _init_worker(ctx: RunContext) -> None:
    _STATE["ctx"] = ctx


def _run_batch(batch: Batch, ctx: RunContext | None = None) -> tuple[Batch, np.ndarray, np.ndarray]:
    """Run the rollouts of one batch: ``(batch, values (n, n_queries), steps (n,))``."""
    ctx = ctx or _STATE["ctx"]
    stim = ctx.stimuli[batch.stimulus]
    params = ctx.points[batch.point]
    qs = ctx.queries[batch.stimulus]
    point_key = 0 if ctx.crn else params.key()
    n = batch.stop - batch.start
    values = np.empty((n, len(qs)), dtype=float)
    steps = np.empty(n, dtype=np.int64)
    shared = ctx.shared  # rollouts that run the same physics are simulated once (same_physics_key)
    i = batch.stimulus
    for k, sample in enumerate(range(batch.start, batch.stop)):
        scene, schedule = prepare_sample(stim, params, ctx.seed, sample, qs, point_key, ctx.early_stop)
        empty = shared.get(("empty_kick", i))
        key = same_physics_key(stim, params, scene, schedule, bool(empty))
        if key is not None and (i, key) in shared:
            values[k], steps[k] = shared[(i, key)]
            continue
        # a kick whose emptiness is not known yet: this rollout tells (the world before the removal is the
        # stimulus's own in every sample where the key with an empty kick exists)
        learn = empty is None and key is None and schedule.on_remove and \
            same_physics_key(stim, params, scene, schedule, True) is not None
        res = rollout(scene, schedule, early_stop=ctx.early_stop)
        values[k] = [evaluate(q, res, stim) for q in qs]
        steps[k] = res.steps
        if learn:
            empty = kick_was_empty(schedule)
            if empty is not None:
                shared[("empty_kick", i)] = empty
                if empty:
                    key = same_physics_key(stim, params, scene, schedule, True)
        if key is not None:
            shared[(i, key)] = (values[k].copy(), res.steps)
    return batch, values, steps


def _run_task(task: tuple[Batch, ...], ctx: RunContext | None = None) -> list[tuple[Batch, np.ndarray, np.ndarray]]:
    """Run one task (consecutive batches); on a Dask worker, check it computes the same physics first."""
    ctx = ctx or _STATE["ctx"]
    if ctx.physics:
        here = physics_version()
        if here != ctx.physics:
            raise InputError(f"a Dask worker runs physics version {here!r}, the client {ctx.physics!r}; "
                             "install the same ipe, pymunk and numpy on every worker")
    return [_run_batch(b, ctx) for b in task]


def _dask_context(ctx: RunContext) -> RunContext:
    """The identity: submitted as a task, so the context travels to the workers once and is recomputed if lost."""
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



def resolve_queries(stimuli: StimulusSet, queries) -> list[list[Query]]:
    """Each stimulus's queries: its own (``queries=None``) or the ones given, checked against every scene."""
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



def prepare_run(stimuli, params, workers: int, backend: str | None, scheduler: Any
                ) -> tuple[StimulusSet, list[NoiseParams], str]:
    """Check what the simulation entry points share besides their declared rules, once, where they enter.

    Returns ``(stimuli as a StimulusSet, points as a list, backend)``. The
    counts, seed and flags are checked by the entry points' declared rules
    (:data:`RUN_RULES`).
    """
    stimuli = as_stimulus_set(stimuli)
    if len(stimuli) == 0:
        raise InputError("no stimuli given")
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
    backend = backend or ("serial" if workers == 1 else "process")
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    if scheduler is not None and backend != "dask":
        raise InputError(f"a scheduler is only used by the dask backend, not {backend!r}")
    return stimuli, points, backend


#: The declared rules of the arguments every simulation entry point shares (with ``validate_params``).
RUN_RULES = dict(seed=SEED, workers=POSITIVE_INT, batch_size=Optional(POSITIVE_INT), early_stop=BOOL)


@dataclass
class RunSpec:
    """A checked simulation run: what :func:`ipe.montecarlo.simulate` and :func:`ipe.adaptive.simulate_adaptive`
    hand to their loops once the arguments are checked (``store``: the cache or ``None``)."""

    stimuli: StimulusSet
    points: list
    queries: list
    seed: int
    early_stop: bool
    crn: bool
    store: Any
    progress: bool | None
    runner: "Runner"

    @classmethod
    def build(cls, stimuli: StimulusSet, points: list, queries: list, seed: int, early_stop: bool, crn: bool,
              store: Any, progress: bool | None, backend: str, workers: int, scheduler: Any,
              batch_size: int | None) -> "RunSpec":
        ctx = RunContext(tuple(stimuli), points, seed, queries, early_stop, crn)
        return cls(stimuli, points, queries, seed, early_stop, crn, store, progress,
                   Runner(ctx, backend, workers, scheduler, batch_size))

    @property
    def pairs(self) -> list[tuple[int, int]]:
        """Every (point, stimulus) index pair, in table order."""
        return [(p, s) for p in range(len(self.points)) for s in range(len(self.stimuli))]

    def results(self, n: int) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
        """Empty ``(values, steps)`` arrays for ``n`` rollouts of every pair."""
        return {pair: (np.empty((n, len(self.queries[pair[1]])), dtype=float), np.empty(n, np.int64))
                for pair in self.pairs}

    def cached_fill(self, results: dict, info: dict | None = None) -> "CachedFill":
        return CachedFill(self.stimuli, self.points, self.queries, self.seed, self.early_stop, self.crn, self.store,
                          results, info)

    def table(self, results: dict, counts: int | dict) -> pd.DataFrame:
        """The tidy rollouts table of ``results`` (``counts``: one count, or one per pair)."""
        return assemble_rollouts(self.stimuli, self.points, self.queries, self.pairs, results, counts)


class Runner:
    """Runs ranges of rollouts on one backend, which starts at the first :meth:`run` and stays up until closed.

    :func:`simulate` runs once; :func:`ipe.adaptive.simulate_adaptive` runs
    round after round on the same process pool or Dask cluster. ``collect(batch,
    values, steps)`` receives every finished batch, in whatever order the
    backend finishes them.
    """

    def __init__(self, ctx: RunContext, backend: str, workers: int, scheduler: Any = None,
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
        from distributed import as_completed  # distributed is imported only when Dask runs

        if self._client is None:
            self._client, self._owned = _dask_client(self.scheduler, self.workers)
        client = self._client
        n_workers = max(1, sum(client.nthreads().values())) if self.scheduler is not None else self.workers
        bs = max(DASK_MIN_BATCH, self.batch_size or dask_batch_size(total, n_workers))
        tasks = plan_range_tasks(ranges, bs)
        run = uuid.uuid4().hex[:12]
        c = self.ctx
        ctx = RunContext(c.stimuli, c.points, c.seed, c.queries, c.early_stop, c.crn, physics_version())
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


def assemble_rollouts(stimuli: StimulusSet, points, qs, pairs, results, n_samples) -> pd.DataFrame:
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



def progress_bar(total: int, progress: bool | None):
    """The rollouts' progress bar: a bar in a terminal; with ``progress=True``, plain lines elsewhere."""
    return _bar(total, progress, desc="simulating", unit="rollout")
