import numpy as np
import pytest

from ipe.noise import NoiseParams
from ipe.queries import fall_threshold
from ipe.scene import Block, Intervention, Scene, StaticBox
from ipe.stimuli.towers import TowerOptions, build_tower, tower_scene
from ipe.world import (
    Schedule,
    World,
    fast_steps,
    find_overlaps,
    plain_rollout,
    resolve_overlaps,
    rollout,
)

from scenes import stack_scene


def n_fallen(scene, final):
    y0 = np.array([b.position[1] for b in scene.bodies])
    return int(np.sum(y0 - final[:, 1] > fall_threshold(scene)))


def test_resting_stack_stays_at_rest_for_the_whole_horizon(straight_stack):
    final = plain_rollout(straight_stack)
    initial = np.array([(b.position[0], b.position[1], b.angle) for b in straight_stack.bodies])
    d = np.abs(final - initial)
    assert d[:, 0].max() < 0.002  # < 2 mm sideways
    assert d[:, 1].max() < 0.002  # < 2 mm of compression over 10 blocks
    assert d[:, 2].max() < 0.01


def test_staggered_stable_stack_stays_and_offset_stack_falls(falling_stack):
    stable = stack_scene([0.0, 0.05, 0.1, 0.05, 0.0, -0.05, 0.0])
    assert n_fallen(stable, plain_rollout(stable)) == 0
    assert n_fallen(falling_stack, plain_rollout(falling_stack)) >= 2


def test_fast_steps_are_bit_identical_to_space_step(demo):
    scene = demo[1].scene
    a, b = World(scene), World(scene)
    for _ in range(200):
        a.space.step(a.settings.dt)
    fast_steps(b.space, b.settings.dt, 200)
    assert np.array_equal(a.state(), b.state())


def test_full_horizon_rollout_equals_plain_loop(demo):
    for s in list(demo)[:4]:
        r = rollout(s.scene, early_stop=False)
        assert r.steps == r.n_steps == 480
        assert np.array_equal(r.final, plain_rollout(s.scene))


def test_fresh_world_each_time_replays_exactly(demo):
    r1 = rollout(demo[3].scene)
    r2 = rollout(demo[3].scene)
    assert np.array_equal(r1.final, r2.final) and r1.steps == r2.steps


def test_early_stop_keeps_judgments_and_saves_steps(demo):
    steps = []
    for s in demo:
        r = rollout(s.scene)
        assert n_fallen(s.scene, r.final) == n_fallen(s.scene, plain_rollout(s.scene)), s.id
        steps.append(r.steps)
        if s.metadata["stable"]:
            assert r.stopped_early
    assert sum(steps) < 0.7 * 480 * len(demo)


def test_early_stop_agrees_with_plain_loop_on_random_towers():
    rng = np.random.default_rng(42)
    for _ in range(30):
        scene = tower_scene(build_tower(rng, TowerOptions()))
        assert n_fallen(scene, rollout(scene).final) == n_fallen(scene, plain_rollout(scene))


def test_early_stop_waits_for_a_slow_start():
    # A single block balanced just past the edge of its support tips slowly:
    # it must not be mistaken for a resting one.
    base = Block(id="base", position=(0.0, 0.05), width=0.3, height=0.1)
    top = Block(id="top", position=(0.1505, 0.15), width=0.3, height=0.1)
    scene = Scene(bodies=(base, top), statics=(StaticBox(id="g", position=(0, -0.05), width=6, height=0.1),))
    assert n_fallen(scene, rollout(scene).final) == n_fallen(scene, plain_rollout(scene)) == 1


# Noisy rollouts that the rest test alone (1/15 s) stopped while the tower was coasting up to a
# balance point or just tipping away from it: (tower of generate_towers(30, seed=2013), σ, φ, sample),
# simulated with seed 1. Each fell in the full horizon and counted 0 fallen when stopped early.
SLOW_TIPPERS = [("tower_018", 0.2, 0.0, 3), ("tower_008", 0.05, 0.0, 3), ("tower_002", 0.2, 0.1, 13),
                ("tower_009", 0.2, 0.1, 10), ("tower_015", 0.2, 0.1, 3), ("tower_000", 0.2, 0.0, 17)]


def test_early_stop_is_not_fooled_by_towers_near_a_balance_point():
    import ipe
    from ipe.stimuli.towers import generate_towers

    towers = {s.id: s for s in generate_towers(30, seed=2013)}
    for sid, sigma, phi, k in SLOW_TIPPERS:
        p = NoiseParams(sigma=sigma, phi=phi)
        early, full = (ipe.simulate(towers[sid], p, n_samples=k + 1, seed=1, queries="count_fallen",
                                    early_stop=es, progress=False).iloc[k] for es in (True, False))
        assert full["value"] > 0, (sid, k)
        assert early["value"] == full["value"], (sid, sigma, phi, k, early["steps"])


def test_early_stop_keeps_every_noisy_judgment():
    """Rollout by rollout, early stopping gives the full horizon's fall counts under σ and the φ push."""
    import ipe
    from ipe.stimuli.towers import generate_towers

    towers = generate_towers(8, seed=31)
    points = [NoiseParams(sigma=0.2, phi=0.1), NoiseParams(sigma=0.3)]
    early, full = (ipe.simulate(towers, points, n_samples=12, seed=3, queries="count_fallen", early_stop=es,
                                progress=False) for es in (True, False))
    assert early["value"].tolist() == full["value"].tolist()
    assert early["steps"].sum() < 0.95 * full["steps"].sum()


def test_remove_intervention_acts_at_its_time():
    scene = stack_scene([0.0, 0.1, 0.15])
    # Removing the bottom block after 0.5 s drops the others by a block height.
    sched = Schedule(interventions=(Intervention(type="remove", time=0.5, bodies=("b0",)),))
    r = rollout(scene, sched, record_every=12)
    assert r.removed.tolist() == [True, False, False]
    t_idx = np.searchsorted(r.times, 0.45)
    assert abs(r.trajectory[t_idx, 1, 1] - r.initial[1, 1]) < 0.002  # nothing happened before 0.5 s
    assert r.initial[1, 1] - r.final[1, 1] > 0.05
    assert r.final[0].tolist() == r.trajectory[t_idx + 1, 0].tolist()  # removed body keeps its last state


def test_impulse_intervention_pushes():
    scene = stack_scene([0.0])
    sched = Schedule(interventions=(Intervention(type="impulse", time=0.1, bodies=("b0",), impulse=(0.02, 0.0)),))
    r = rollout(scene, sched)
    assert r.final[0, 0] - r.initial[0, 0] > 0.01


def test_trajectory_recording():
    r = rollout(stack_scene([0.0, 0.2]), early_stop=False, record_every=24)
    assert r.trajectory.shape == (21, 2, 3)
    assert r.times[0] == 0 and r.times[-1] == pytest.approx(2.0)
    assert np.array_equal(r.trajectory[-1], r.final)


def test_resolve_overlaps_separates_and_keeps_others():
    a = Block(id="a", position=(0.0, 0.05), width=0.3, height=0.1)
    b = Block(id="b", position=(0.25, 0.05), width=0.3, height=0.1)  # 5 cm into a
    c = Block(id="c", position=(1.0, 0.05), width=0.3, height=0.1)
    scene = Scene(bodies=(a, b, c), statics=(StaticBox(id="g", position=(0, -0.05), width=6, height=0.1),))
    assert len(find_overlaps(scene)) == 1
    fixed = resolve_overlaps(scene)
    assert find_overlaps(fixed) == []
    assert fixed.bodies[0] == a and fixed.bodies[2] == c
    assert fixed.bodies[1].position[0] == pytest.approx(0.3)


def _random_overlapping_scene(rng):
    from ipe.scene import Ball, StaticSegment

    bodies = []
    for k in range(8):
        x, y = rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.6)
        if k % 3 == 2:
            bodies.append(Ball(id=f"b{k}", position=(x, y), radius=rng.uniform(0.03, 0.08)))
        else:
            bodies.append(Block(id=f"b{k}", position=(x, y), width=rng.uniform(0.1, 0.3), height=0.1,
                                angle=rng.uniform(-0.5, 0.5), corner_radius=0.005 * (k % 2)))
    statics = (StaticBox(id="g", position=(0, -0.05), width=6, height=0.1),
               StaticSegment(id="wall", a=(0.45, 0.0), b=(0.2, 0.8), radius=0.01))
    return Scene(bodies=tuple(bodies), statics=statics)


def test_pooled_query_shapes_answer_as_shapes_built_fresh_in_a_space():
    """Overlap tests reuse pymunk shapes (ipe.world.query_shapes); they must give what fresh shapes give."""
    import pymunk

    from ipe import world as W

    rng = np.random.default_rng(7)
    scenes = [_random_overlapping_scene(rng) for _ in range(12)]
    for scene in scenes + scenes[::-1]:  # the second pass re-poses shapes that other scenes used
        space = pymunk.Space()
        fresh = []
        for b in scene.bodies:
            body, shape = W._dynamic_body(b)
            space.add(body, shape)
            fresh.append(shape)
        for s in scene.statics:
            shape = W._static_shape(space.static_body, s)
            space.add(shape)
            fresh.append(shape)
        dyn, stat = W.query_shapes(scene)
        pooled = dyn + stat
        for i in range(len(fresh)):
            for j in range(len(fresh)):
                if i != j:
                    assert W.separation_vector(pooled[i], pooled[j]) == W.separation_vector(fresh[i], fresh[j])
    first = [resolve_overlaps(s) for s in scenes]
    assert any(f is not s for f, s in zip(first, scenes))
    assert [resolve_overlaps(s) for s in scenes[::-1]] == first[::-1]


def test_noisy_rollouts_never_start_interpenetrating(demo):
    from ipe.noise import apply_noise
    from ipe.seeding import sample_seed

    params = NoiseParams(sigma=1.0, angle_sigma=0.1)
    for s in list(demo)[:6]:
        for k in range(5):
            scene, _ = apply_noise(s, params.sources(), sample_seed(1, s.id, 0, k))
            assert find_overlaps(scene) == []
