"""ipe.runner: batches of seeded rollouts, the run a checked entry point hands down, the tidy table."""

import numpy as np
import pytest

import ipe
from ipe.errors import InputError
from ipe.noise import NoiseParams
from ipe.runner import (ROLLOUT_COLUMNS, Batch, RunSpec, plan_range_tasks, prepare_run, resolve_queries,
                        run_sample)


@pytest.fixture(scope="module")
def two(demo):
    return ipe.StimulusSet(list(demo)[:2])


def test_plan_range_tasks_cuts_ranges_into_equal_tasks_across_stimuli():
    tasks = plan_range_tasks([Batch(0, 0, 2, 7), Batch(0, 1, 0, 4)], 3)
    assert tasks == [(Batch(0, 0, 2, 5),), (Batch(0, 0, 5, 7), Batch(0, 1, 0, 1)), (Batch(0, 1, 1, 4),)]
    assert sum(b.stop - b.start for t in tasks for b in t) == 9


def test_prepare_run_defaults_the_backend_and_lists_the_points(two):
    stimuli, points, backend = prepare_run(two, NoiseParams(sigma=0.1), 1, None, None)
    assert len(stimuli) == 2 and points == [NoiseParams(sigma=0.1)] and backend == "serial"
    assert prepare_run(two, [NoiseParams()], 3, None, None)[2] == "process"
    with pytest.raises(InputError, match="unknown backend 'threads'; expected one of serial, process, dask"):
        prepare_run(two, NoiseParams(), 1, "threads", None)
    with pytest.raises(InputError, match="params must be NoiseParams"):
        prepare_run(two, [0.1], 1, None, None)


def test_entry_points_check_counts_with_the_one_template(two):
    with pytest.raises(InputError, match=r"^n_samples must be a positive integer, got 0$"):
        ipe.simulate(two, n_samples=np.int64(0))
    with pytest.raises(InputError, match=r"^batch_size must be a positive integer or None, got 0$"):
        ipe.simulate(two, n_samples=2, batch_size=0)
    with pytest.raises(InputError, match=r"^early_stop must be True or False, got 1$"):
        ipe.simulate(two, n_samples=2, early_stop=1)
    with pytest.raises(InputError, match=r"^max_samples must be a positive integer, got 0$"):
        ipe.adaptive.simulate_adaptive(two, max_samples=0)


def test_run_spec_table_matches_run_sample(two):
    stimuli, points, backend = prepare_run(two, NoiseParams(sigma=0.2), 1, None, None)
    qs = resolve_queries(stimuli, None)
    run = RunSpec.build(stimuli, points, qs, 5, True, False, None, False, backend, 1, None, None)
    assert run.pairs == [(0, 0), (0, 1)]
    results = run.results(3)
    fill = run.cached_fill(results)
    todo = fill.lookup({pair: (0, 3) for pair in run.pairs})
    with run.runner as runner:
        runner.run(todo, fill.collect, _NoBar())
    table = run.table(results, 3)
    assert list(table.columns) == ROLLOUT_COLUMNS and len(table) == 6
    for row in table.itertuples():
        stim = stimuli[int(row.Index) // 3]
        values, res = run_sample(stim, points[0], 5, row.sample, qs[int(row.Index) // 3])
        assert row.value == values[0] and row.steps == res.steps


class _NoBar:
    def update(self, n):
        pass
