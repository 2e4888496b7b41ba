import numpy as np
import pytest

from ipe.noise import NoiseParams
from ipe.queries import fall_threshold
from ipe.scene import Block, Intervention, Scene, StaticBox
from ipe.stimuli.towers import TowerOptions, build_tower, tower_scene
from ipe.rollout import EventKind, Schedule, plan_events, plain_rollout, rollout
from ipe.world import World

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


def test_events_apply_in_step_then_kind_order():
    """At one step a push that ends is applied before an intervention, and that before a push that starts."""
    scene = stack_scene([0.0, 0.1])
    iv = Intervention(type="remove", time=0.5, bodies=("b0",))
    sched = Schedule(interventions=(iv,), gravity_from=0.5, gravity_until=(1.0, (3.0, -9.81)))
    world = World(scene)
    events = plan_events(world, sched)
    assert [(e.step, e.kind) for e in events] == [(120, EventKind.INTERVENTION), (120, EventKind.PUSH_START),
                                                  (240, EventKind.PUSH_END)]
    assert events[1].payload == (3.0, -9.81) and events[0].payload is iv
    assert tuple(world.space.gravity) == scene.gravity  # a push that starts later is not applied yet


def test_a_push_from_time_zero_tilts_gravity_before_the_first_step():
    scene = stack_scene([0.0])
    world = World(scene)
    events = plan_events(world, Schedule(gravity_until=(0.2, (1.0, -9.81))))
    assert [(e.step, e.kind) for e in events] == [(48, EventKind.PUSH_END)]
    assert tuple(world.space.gravity) == (1.0, -9.81)
