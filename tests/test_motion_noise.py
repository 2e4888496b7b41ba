"""Motion noise: launch, collision, per-step direction and obstacle noise.

* every source is the identity at 0, and points without motion noise keep
  their seeds (so tower outputs are unchanged);
* with all noise at 0 the landing equals the deterministic simulation
  exactly, and tracking a rollout does not change its physics;
* as each source's level goes to 0 the landings converge to the noise-free
  one, and more noise gives more spread;
* the documented units hold (step noise diffuses as rad/√s, independent of dt).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.montecarlo import run_sample
from ipe.noise import (MOTION_FIELDS, NOISE_UNITS, CollisionNoise, LaunchNoise, NoiseParams, ObstacleNoise,
                       StepNoise, apply_noise)
from ipe.scene import Ball, Block, Query, Scene, Simulation, StaticBox, StaticRegularPolygon, Stimulus
from ipe.scenefile import parse_stimulus_set
from ipe.seeding import sample_seed
from ipe.rollout import Schedule, plain_rollout, rollout

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scene-format.md"


def docs_plinko() -> Stimulus:
    """The hand-written pixel-unit world of docs/scene-format.md, exactly as printed there."""
    text = DOCS.read_text(encoding="utf-8")
    for m in re.finditer(r"^```json\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        if '"plinko_by_hand"' in m.group(1):
            return parse_stimulus_set(json.loads(m.group(1)))[0]
    raise AssertionError("the Plinko example is missing from docs/scene-format.md")


def throw_stimulus() -> Stimulus:
    """A ball thrown up and to the right over a hexagonal peg onto the ground (pixel units)."""
    scene = Scene(
        bodies=(Ball("ball", (100.0, 300.0), 25.0, velocity=(400.0, 300.0), elasticity=0.5),),
        statics=(StaticBox("ground", (400.0, -10.0), 1600.0, 20.0, elasticity=0.5, label="ground"),
                 StaticRegularPolygon("peg", 6, 50.0, (420.0, 250.0), 0.2, elasticity=0.5, label="obstacle")),
        gravity=(0.0, -1500.0), simulation=Simulation(horizon=3.0))
    return Stimulus("throw", scene, Query("landing_x", {"body": "ball", "target": "ground"}))


# Which stimulus shows each source: a ball dropped from rest has no launch direction or speed to perturb.
WHERE = {"launch_angle": "throw", "launch_speed": "throw"}


@pytest.fixture(scope="module")
def stimuli():
    return {"docs": docs_plinko(), "throw": throw_stimulus()}


def landings(stim, params, n, seed=0):
    return np.array([run_sample(stim, params, seed, k, [stim.query])[0][0] for k in range(n)])


# --------------------------------------------------------------------------- parameters and seeds


def test_motion_fields_default_to_zero_and_have_units():
    p = NoiseParams()
    assert all(getattr(p, f) == 0.0 for f in MOTION_FIELDS)
    assert set(NOISE_UNITS) == set(NoiseParams.names())
    assert p.sources() == []
    for f in MOTION_FIELDS:
        assert len(NoiseParams(**{f: 0.1}).sources()) == 1


def test_points_without_motion_noise_keep_their_seeds():
    # The key of a point is the SHA-256 of the five original fields, as before motion noise existed.
    for p in (NoiseParams(), NoiseParams(sigma=0.2, phi=0.1)):
        text = ",".join(f"{k}={getattr(p, k)!r}" for k in ("sigma", "phi", "mu", "angle_sigma", "push_duration"))
        assert p.key() == int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    assert NoiseParams(launch_angle=0.1).key() != NoiseParams().key()
    assert NoiseParams(launch_angle=0.1).key() != NoiseParams(launch_speed=0.1).key()


@pytest.mark.parametrize("field", MOTION_FIELDS)
def test_bad_motion_noise_is_rejected(field):
    with pytest.raises(InputError, match=field):
        NoiseParams(**{field: -0.1})
    with pytest.raises(InputError, match=field):
        NoiseParams(**{field: float("nan")})


def test_sources_draw_from_their_own_streams(stimuli):
    """Switching collision or step noise on does not change what launch noise draws."""
    stim = stimuli["throw"]
    ss = sample_seed(3, stim.id, 0, 0)
    a, _ = apply_noise(stim, [LaunchNoise(0.2, 0.1, 0.1)], ss)
    b, sched = apply_noise(stim, [LaunchNoise(0.2, 0.1, 0.1), CollisionNoise(0.3), StepNoise(0.5)], ss)
    assert a == b
    assert len(sched.hooks) == 2


def test_launch_noise_changes_balls_only():
    scene = Scene(bodies=(Ball("ball", (0.0, 1.0), 0.05, velocity=(3.0, 4.0)),
                          Block("box", (1.0, 0.05), 0.1, 0.1)),
                  statics=(StaticBox("ground", (0.0, -0.05), 6.0, 0.1),))
    rng = np.random.default_rng(1)
    out = LaunchNoise(angle=0.3).perturb_scene(scene, rng)
    assert out.bodies[1] == scene.bodies[1]
    assert out.bodies[0].position == scene.bodies[0].position
    assert math.hypot(*out.bodies[0].velocity) == pytest.approx(5.0, rel=1e-12)  # direction only
    assert out.bodies[0].velocity != scene.bodies[0].velocity


def test_obstacle_noise_moves_only_obstacles(stimuli):
    scene = stimuli["docs"].scene
    out = ObstacleNoise(position=0.2, angle=0.2).perturb_scene(scene, np.random.default_rng(2))
    for before, after in zip(scene.statics, out.statics):
        if before.label == "obstacle":
            assert after != before
        else:
            assert after == before


# --------------------------------------------------------------------------- no noise = deterministic


def test_no_noise_landings_equal_the_deterministic_simulation(stimuli):
    stim = stimuli["docs"]
    x = landings(stim, NoiseParams(), 3)
    assert np.all(x == x[0])
    # The same scene through a bare tracked rollout, no noise machinery at all.
    r = rollout(stim.scene, Schedule(track=True))
    step, x_direct, _ = r.events.contacts[("ball", "ground")]
    assert x[0] == x_direct
    assert x[0] == pytest.approx(565.545, abs=0.01)  # the number docs/scene-format.md states


@pytest.mark.parametrize("which", ["docs", "throw"])
def test_tracking_does_not_change_the_physics(stimuli, which):
    scene = stimuli[which].scene
    tracked = rollout(scene, Schedule(track=True), early_stop=False)
    plain = rollout(scene, Schedule(), early_stop=False)
    np.testing.assert_array_equal(tracked.final, plain.final)
    np.testing.assert_array_equal(tracked.final, plain_rollout(scene))
    assert tracked.events.path.shape == (tracked.steps + 1, 1, 3)
    np.testing.assert_array_equal(tracked.events.path[-1], tracked.final)


def test_tracking_does_not_change_a_tower(demo):
    scene = demo[0].scene
    a = rollout(scene, Schedule(track=True), early_stop=False)
    np.testing.assert_array_equal(a.final, plain_rollout(scene))


# --------------------------------------------------------------------------- convergence and spread


@pytest.mark.parametrize("field", MOTION_FIELDS)
def test_each_source_converges_to_no_noise_and_more_noise_spreads_more(stimuli, field):
    stim = stimuli[WHERE.get(field, "docs")]
    x0 = landings(stim, NoiseParams(), 1)[0]
    n = 8
    dev = {}
    sd = {}
    for level in (0.3, 1e-3, 1e-6):
        x = landings(stim, NoiseParams(**{field: level}), n, seed=5)
        ok = x[np.isfinite(x)]
        assert len(ok) >= n - 1
        dev[level] = float(np.mean(np.abs(ok - x0)))
        sd[level] = float(np.std(ok))
    assert dev[1e-6] < 0.05  # pixels: 1e-6 of the noise leaves the landing where it was
    assert dev[1e-6] <= dev[1e-3] <= dev[0.3]
    assert dev[0.3] > 1.0
    if field == "collision_speed_loss":  # a mean loss of speed alone moves the landing but draws nothing
        assert sd[0.3] == sd[1e-3] == 0.0
    else:
        assert sd[0.3] > sd[1e-3] > sd[1e-6]


def test_collision_noise_acts_when_a_ball_leaves_the_ground():
    """A ball bouncing straight up and down stays on its vertical line unless collision noise turns it."""
    scene = Scene(bodies=(Ball("ball", (0.0, 1.0), 0.05, elasticity=0.9),),
                  statics=(StaticBox("ground", (0.0, -0.05), 60.0, 0.1, elasticity=0.9),),
                  simulation=Simulation(horizon=1.5))
    stim = Stimulus("bounce", scene, Query("distance"))
    x_still = run_sample(stim, NoiseParams(), 0, 0, [stim.query])[1].final[0, 0]
    assert x_still == 0.0
    moved = [abs(run_sample(stim, NoiseParams(collision_angle=0.2), 0, k, [stim.query])[1].final[0, 0])
             for k in range(4)]
    assert min(moved) > 1e-3


@pytest.mark.parametrize("substeps", [4, 8])
def test_step_noise_diffuses_in_rad_per_sqrt_second(substeps):
    """After T seconds of free flight the direction has turned by N(0, step_angle² · T), whatever the step."""
    scene = Scene(bodies=(Ball("ball", (0.0, 0.0), 0.05, velocity=(1.0, 0.0)),), gravity=(0.0, 0.0),
                  simulation=Simulation(substeps=substeps, horizon=1.0))
    stim = Stimulus("fly", scene, Query("distance"))
    angles = []
    for k in range(40):
        _, r = run_sample(stim, NoiseParams(step_angle=0.3), 11, k, [Query("landing_x", {"body": "ball",
                                                                                          "level": -1e9})],
                          early_stop=False)
        p = r.events.path[:, 0, :2]
        d = p[-1] - p[-2]
        angles.append(math.atan2(d[1], d[0]))
    sd = float(np.std(angles))
    assert 0.3 * 0.7 < sd < 0.3 * 1.3


# --------------------------------------------------------------------------- the published Plinko family


def test_truncated_speed_factor_is_the_truncated_normal():
    from scipy.stats import truncnorm

    from ipe.noise import truncated_speed_factor

    rng = np.random.default_rng(0)
    for mean, sd in ((0.56, 0.3), (0.2, 0.5)):
        x = np.array([truncated_speed_factor(rng, mean, sd) for _ in range(4000)])
        ref = truncnorm((0 - mean) / sd, np.inf, loc=mean, scale=sd)
        assert x.min() >= 0
        assert abs(x.mean() - ref.mean()) < 4 * ref.std() / math.sqrt(len(x))
        assert abs(x.std() - ref.std()) < 0.05 * ref.std()
    assert truncated_speed_factor(rng, 0.56, 0.0) == 0.56 and truncated_speed_factor(rng, -0.5, 0.0) == 0.0


def bounce_scene(labels=None, horizon=1.0):
    return Scene(bodies=(Ball("ball", (0.0, 1.0), 0.05, elasticity=0.9),),
                 statics=(StaticBox("ground", (0.0, -0.05), 60.0, 0.1, elasticity=0.9, label="ground"),),
                 simulation=Simulation(horizon=horizon, collision_noise_labels=labels))


def test_collision_speed_loss_scales_the_speed_after_a_bounce():
    """A ball bouncing straight up leaves the ground with (1 − loss) of the speed it would have had."""
    stim = Stimulus("bounce", bounce_scene(horizon=0.6), Query("distance"))
    q = [Query("landing_x", {"body": "ball", "level": -1e9})]
    plain = run_sample(stim, NoiseParams(), 0, 0, q, early_stop=False)[1].events
    lossy = run_sample(stim, NoiseParams(collision_speed_loss=0.5), 0, 0, q, early_stop=False)[1].events
    vy_plain = np.diff(plain.path[:, 0, 1]) / plain.dt
    vy_lossy = np.diff(lossy.path[:, 0, 1]) / lossy.dt
    up = int(np.argmax(vy_plain > 0))  # the first step going up: the bounce
    assert up > 0 and vy_plain[up + 1] > 1.0
    # the kick comes in the step after chipmunk reports the separation
    k = up + int(np.argmax(np.abs(vy_lossy[up:] - vy_plain[up:]) > 1e-6))
    assert vy_lossy[k + 1] == pytest.approx(0.5 * vy_plain[k + 1], rel=0.02)


def test_collision_noise_is_limited_to_labelled_shapes():
    moved = {}
    for labels in (None, ("obstacle",), ("ground",)):
        stim = Stimulus("bounce", bounce_scene(labels), Query("distance"))
        xs = [run_sample(stim, NoiseParams(collision_angle=0.2, collision_speed_sd=0.3), 0, k,
                         [stim.query])[1].final[0, 0] for k in range(3)]
        moved[labels] = max(abs(x) for x in xs)
    assert moved[("obstacle",)] == 0.0  # the ground is not an obstacle: no noise at all
    assert moved[None] > 1e-3 and moved[("ground",)] == moved[None]


def test_drop_noise_turns_a_ball_released_at_rest_once():
    scene = Scene(bodies=(Ball("ball", (0.0, 1.0), 0.05),), gravity=(0.0, -9.81),
                  simulation=Simulation(horizon=0.5))
    stim = Stimulus("drop", scene, Query("distance"))
    q = [Query("landing_x", {"body": "ball", "level": -1e9})]
    ev0 = run_sample(stim, NoiseParams(), 0, 0, q, early_stop=False)[1].events
    assert np.all(ev0.path[:, 0, 0] == 0.0)
    ev = run_sample(stim, NoiseParams(drop_angle=0.3), 0, 1, q, early_stop=False)[1].events
    x, y = ev.path[:, 0, 0], ev.path[:, 0, 1]
    turned = int(np.argmax(x != 0.0))
    assert turned > 0 and 1.0 - y[turned - 1] >= 0.1 - 1e-9 > 1.0 - y[turned - 2]  # one diameter below the start
    vx = np.diff(x) / ev.dt
    assert np.allclose(vx[turned:], vx[turned])  # turned once, then free flight (vx constant)
    # a thrown ball is not turned by drop noise
    thrown = Stimulus("t", scene.with_bodies([Ball("ball", (0.0, 1.0), 0.05, velocity=(1.0, 0.0))]), Query("distance"))
    a = run_sample(thrown, NoiseParams(), 0, 0, q, early_stop=False)[1].final
    b = run_sample(thrown, NoiseParams(drop_angle=0.3), 0, 0, q, early_stop=False)[1].final
    np.testing.assert_array_equal(a, b)
