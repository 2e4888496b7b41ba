"""Answer-aware stopping: a rollout ends once every answer asked of it is provably the horizon's."""
import numpy as np
import pytest

import ipe
from ipe.noise import NoiseParams
from ipe.queries import HeightTest, final_condition
from ipe.rollout import ReachBound, Schedule, rollout
from ipe.runner import run_sample
from ipe.scene import Block, Query, Scene, StaticBox, Stimulus
from ipe.world import World

GROUND = StaticBox(id="ground", position=(0.0, -0.05), width=6.0, height=0.1, friction=0.7)


def dropped_block(friction=0.05, vx=1.5):
    """A slab on the floor and one dropped from 0.6 m that lands and slides (slippery) for the whole horizon."""
    bodies = (Block(id="base", position=(0.0, 0.05), width=0.3, height=0.1),
              Block(id="drop", position=(0.0, 0.6), width=0.3, height=0.1, friction=friction, velocity=(vx, 0.0)))
    return Stimulus(id="drop", scene=Scene(bodies=bodies, statics=(GROUND,)), query=Query("body_falls", {"body": "drop"}))


def test_a_final_answer_ends_the_rollout_before_rest_with_the_horizons_answer():
    stim = dropped_block()
    for sample in range(4):
        q = [stim.query]
        early_values, early = run_sample(stim, NoiseParams(sigma=0.1), 0, sample, q)
        full_values, full = run_sample(stim, NoiseParams(sigma=0.1), 0, sample, q, early_stop=False)
        assert early_values == full_values == [1.0]
        # Still sliding at 2 s, so rest never ends it; the energy left cannot lift the block back up.
        assert early.steps < 0.85 * full.steps
        rest_only = rollout(*_noisy(stim, sample))
        assert rest_only.steps == rest_only.n_steps


def _noisy(stim, sample):
    from ipe.noise import apply_noise
    from ipe.seeding import sample_seed

    p = NoiseParams(sigma=0.1)
    return apply_noise(stim, p.sources(), sample_seed(0, stim.id, p.key(), sample))


def test_answers_that_move_with_every_position_have_no_final_test():
    stim = dropped_block()
    assert final_condition([Query("direction", {})], stim) is None
    assert final_condition([Query("fall", {}), Query("distance", {})], stim) is None
    assert final_condition([], stim) is None
    assert isinstance(final_condition([Query("fall", {}), Query("body_falls", {"body": "base"})], stim), HeightTest)


def test_fallen_is_not_final_while_the_body_could_still_come_back():
    """'Fell' is read at the end of the rollout: a body past its threshold now is only final if it cannot rise back."""
    stim = dropped_block()
    test = final_condition([Query("count_fallen", {})], stim)
    thr = 0.025 * stim.scene.block_scale
    y0 = np.array([0.05, 0.6])
    removed = np.zeros(2, dtype=bool)
    # The dropped block is now far below its start, but the bound allows it back above start - threshold.
    assert not test.final(y0, np.array([0.05, 0.05]), np.array([0.05, 0.6 - thr]), removed)
    assert test.final(y0, np.array([0.05, 0.05]), np.array([0.05, 0.6 - thr - 1e-9]), removed)
    # A body that has not fallen is only final if it cannot sink past its threshold.
    assert not test.final(y0, np.array([0.05 - thr - 1e-9, 0.05]), np.array([0.05, 0.1]), removed)
    # Removed bodies are not counted, so they decide nothing.
    assert test.final(y0, np.array([0.0, 0.05]), np.array([0.05, 0.1]), np.array([True, False]))


def test_the_bound_refuses_scenes_where_energy_can_come_in_or_there_is_no_floor():
    stim = dropped_block()
    world = World(stim.scene)
    assert ReachBound.for_world(world, Schedule()) is not None
    assert ReachBound.for_world(world, Schedule(hooks=[lambda w: None])) is None
    tilted = Scene(bodies=stim.scene.bodies, statics=(GROUND,), gravity=(1.0, -9.81))
    assert ReachBound.for_world(World(tilted), Schedule()) is None
    narrow = StaticBox(id="ground", position=(0.0, -0.05), width=0.2, height=0.1)
    assert ReachBound.for_world(World(Scene(bodies=stim.scene.bodies, statics=(narrow,))), Schedule()) is None


def test_the_bound_holds_along_a_rollout():
    """Every height the rollout reaches after a check lies within that check's bounds."""
    stim = dropped_block(friction=0.3)
    scene, schedule = _noisy(stim, 1)
    checks = []

    def hook(world):
        if world.step_index % 16 == 0 and world.step_index > 0:
            bound = ReachBound.for_world(world, Schedule())
            checks.append((world.step_index, bound.bounds(world.step_index)))

    schedule.hooks.append(hook)
    r = rollout(scene, schedule, early_stop=False, record_every=1)
    ys = r.trajectory[:, :, 1]
    tested = 0
    for step, b in checks:
        if b is None:
            continue
        low, high = b
        later = ys[step:]
        assert np.all(later >= low - 1e-12) and np.all(later <= high + 1e-12), step
        tested += 1
    assert tested > 5


@pytest.mark.parametrize("query", ["fall", "count_fallen"])
def test_noisy_towers_keep_every_judgment_rollout_by_rollout(query):
    towers = ipe.generate_towers(6, seed=2013)
    points = [NoiseParams(sigma=0.2, phi=0.2)]
    early, full = (ipe.simulate(towers, points, n_samples=4, seed=5, queries=query, early_stop=es, progress=False)
                   for es in (True, False))
    assert early["value"].tolist() == full["value"].tolist()


def two_dropped_blocks():
    """Two slippery slabs dropped side by side from different heights: both land and slide on."""
    bodies = (Block(id="a", position=(-0.3, 0.5), width=0.3, height=0.1, friction=0.05, velocity=(-1.0, 0.0)),
              Block(id="b", position=(0.3, 0.8), width=0.3, height=0.1, friction=0.05, velocity=(1.0, 0.0)))
    return Stimulus(id="two", scene=Scene(bodies=bodies, statics=(GROUND,)), query=Query("fall", {}))


@pytest.mark.parametrize("query", ["fall", "count_fallen"])
def test_counts_stop_early_under_noise_and_equal_the_horizon_rollout_by_rollout(query):
    stim = two_dropped_blocks()
    p = NoiseParams(sigma=0.2, phi=0.2)
    q = [Query(query, {})]
    stopped = 0
    for sample in range(8):
        early_values, early = run_sample(stim, p, 1, sample, q)
        full_values, full = run_sample(stim, p, 1, sample, q, early_stop=False)
        assert early_values == full_values
        stopped += early.steps < full.steps
    assert stopped >= 4
