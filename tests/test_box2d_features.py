"""Scene features added for importing Box2D scenes (Mental Jenga): ``skin``, ``angular_damping``, ``remove_below``.

All three default to "off", and then a scene, its JSON and its rollouts are exactly what they were before.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.queries import evaluate
from ipe.scene import (
    Ball,
    Block,
    Query,
    Scene,
    Simulation,
    StaticBox,
    Stimulus,
)
from ipe.scenefile import parse_stimulus_set, scene_to_dict, stimulus_set_to_dict
from ipe.geometry import find_overlaps, resolve_overlaps
from ipe.rollout import Schedule, plain_rollout, rollout
from ipe.world import World


def _doc(scene_dict: dict) -> dict:
    return {"schema_version": 1, "stimuli": [{"id": "s", "scene": scene_dict}]}


def _scene_dict(**sim) -> dict:
    return {"simulation": sim, "bodies": [{"id": "b", "position": [0, 0.05], "width": 0.3, "height": 0.1}],
            "statics": [{"id": "g", "type": "box", "position": [0, -0.05], "width": 2, "height": 0.1}]}


# --------------------------------------------------------------------------- defaults and JSON


def test_defaults_write_no_new_keys(demo):
    sim = Simulation()
    assert (sim.angular_damping, sim.remove_below) == (None, None)
    d = stimulus_set_to_dict(demo)
    text = json.dumps(d)
    for key in ("skin", "angular_damping", "remove_below"):
        assert key not in text


def test_new_fields_round_trip():
    doc = _doc(_scene_dict(damping=0.5, angular_damping=1.0, remove_below=-1.0))
    doc["stimuli"][0]["scene"]["bodies"][0]["skin"] = 0.005
    doc["stimuli"][0]["scene"]["statics"][0]["skin"] = 0.005
    st = parse_stimulus_set(doc)
    scene = st[0].scene
    assert scene.bodies[0].skin == 0.005 and scene.statics[0].skin == 0.005
    assert (scene.simulation.damping, scene.simulation.angular_damping, scene.simulation.remove_below) == (0.5, 1.0,
                                                                                                          -1.0)
    again = scene_to_dict(scene)
    assert again["simulation"]["angular_damping"] == 1.0 and again["simulation"]["remove_below"] == -1.0
    assert again["bodies"][0]["skin"] == 0.005 and again["statics"][0]["skin"] == 0.005
    assert stimulus_set_to_dict(parse_stimulus_set(stimulus_set_to_dict(st))) == stimulus_set_to_dict(st)


@pytest.mark.parametrize("where,key,value,fragment", [
    ("simulation", "angular_damping", 0.0, "must be > 0"),
    ("simulation", "angular_damping", 1.5, "must be in (0, 1]"),
    ("simulation", "angular_damping", "x", "must be a number"),
    ("simulation", "remove_below", float("nan"), "must be finite"),
    ("simulation", "remove_below", [1], "must be a number"),
    ("body", "skin", -0.01, "must be >= 0"),
    ("body", "skin", 0.05, "less than half the shorter side"),
    ("static", "skin", 0.06, "less than half the shorter side"),
])
def test_bad_values_are_one_line_errors(where, key, value, fragment):
    doc = _doc(_scene_dict())
    scene = doc["stimuli"][0]["scene"]
    target = {"simulation": scene["simulation"], "body": scene["bodies"][0], "static": scene["statics"][0]}[where]
    target[key] = value
    with pytest.raises(InputError) as exc:
        parse_stimulus_set(doc, source="f.json")
    msg = str(exc.value)
    assert fragment in msg and key in msg and "\n" not in msg, msg


# --------------------------------------------------------------------------- skin


def test_skin_grows_the_collision_shape_not_the_mass():
    b = Block(id="b", position=(0, 0), width=0.8, height=0.4, density=10, skin=0.005)
    world = World(Scene(bodies=(b,)))
    shape = world.shapes[0]
    assert shape.radius == pytest.approx(0.005)
    xs = [v.x for v in shape.get_vertices()]
    assert max(xs) - min(xs) == pytest.approx(0.8)  # the core is the box; the skin lies outside it
    assert world.bodies[0].mass == pytest.approx(3.2)
    assert world.bodies[0].moment == pytest.approx(3.2 * (0.8**2 + 0.4**2) / 12)


def test_overlap_within_the_skins_is_contact_not_interpenetration():
    ground = StaticBox(id="g", position=(0, -0.05), width=2, height=0.1, skin=0.005)

    def block_at(y, skin=0.005):
        return Block(id="b", position=(0, y), width=0.8, height=0.4, skin=skin)

    # Boxes 3 mm apart: the skins (5 mm each) overlap by 7 mm, the boxes do not.
    resting = Scene(bodies=(block_at(0.203),), statics=(ground,))
    assert find_overlaps(resting) == []
    assert resolve_overlaps(resting) is resting
    # Without skins the same boxes are simply apart; with boxes 1 cm into each other it is an overlap either way.
    assert find_overlaps(Scene(bodies=(block_at(0.203, 0.0),), statics=(ground,))) == []
    deep = Scene(bodies=(block_at(0.19),), statics=(ground,))
    (a, b, depth, tol), = find_overlaps(deep)
    assert depth == pytest.approx(0.01, abs=1e-6) and depth > tol
    fixed = resolve_overlaps(deep)
    assert find_overlaps(fixed) == [] and fixed.bodies[0].position[1] == pytest.approx(0.2, abs=1e-6)


def test_skinned_stack_rests_skin_to_skin():
    ground = StaticBox(id="ground", position=(0.0, -0.05), width=6.0, height=0.1, skin=0.005)
    bodies = tuple(Block(id=f"b{i}", position=(0.0, 0.21 + 0.42 * i), width=0.8, height=0.4, skin=0.005)
                   for i in range(3))  # dropped from 1 cm above resting skin to skin
    scene = Scene(bodies=bodies, statics=(ground,),
                  simulation=Simulation(horizon=1.0, collision_slop=0.005, iterations=15, substeps=2))
    final = rollout(scene, early_stop=False).final
    # The boxes end up between skin to skin (1 cm apart) and the skins overlapping by the slop (5 mm apart).
    box_gaps = [final[0, 1] - 0.2] + [final[i, 1] - final[i - 1, 1] - 0.4 for i in (1, 2)]
    assert all(0.004 < g < 0.0101 for g in box_gaps), box_gaps
    assert np.allclose(final[:, 0], 0.0, atol=0.01) and np.allclose(final[:, 2], 0.0, atol=0.01)  # still standing


# --------------------------------------------------------------------------- damping


def _spinning_ball(**sim) -> Scene:
    ball = Ball(id="b", position=(0, 0), radius=0.1, velocity=(2.0, 0.0), angular_velocity=3.0)
    return Scene(bodies=(ball,), gravity=(0.0, 0.0), simulation=Simulation(horizon=1.0, **sim))


@pytest.mark.parametrize("damping,angular", [(0.5, None), (0.5, 1.0), (1.0, 0.25), (0.3, 0.6)])
def test_linear_and_angular_damping_per_second(damping, angular):
    world = World(_spinning_ball(damping=damping, angular_damping=angular))
    world.advance(world.settings.n_steps)
    body = world.bodies[0]
    expected_angular = damping if angular is None else angular
    assert body.velocity.x == pytest.approx(2.0 * damping, rel=1e-9)
    assert body.angular_velocity == pytest.approx(3.0 * expected_angular, rel=1e-9)


def test_world_step_and_plain_rollout_damp_like_rollout():
    scene = _spinning_ball(damping=0.5, angular_damping=1.0)
    a = World(scene)
    a.step(a.settings.n_steps)
    b = World(scene)
    b.advance(b.settings.n_steps)
    assert a.bodies[0].velocity == b.bodies[0].velocity
    assert np.array_equal(plain_rollout(scene), rollout(scene, early_stop=False).final)


def test_equal_damping_takes_the_plain_path():
    assert World(_spinning_ball(damping=0.5)).linear_factor == 1.0
    assert World(_spinning_ball(damping=0.5, angular_damping=0.5)).linear_factor == 1.0
    assert World(_spinning_ball(damping=0.5, angular_damping=1.0)).linear_factor < 1.0


# --------------------------------------------------------------------------- remove_below


def _shelf_scene(remove_below=None, horizon=3.0) -> Stimulus:
    """Block a rests on a shelf; block b sits past its edge and falls to the floor."""
    shelf = StaticBox(id="shelf", position=(0, 0.95), width=1.0, height=0.1)
    floor = StaticBox(id="floor", position=(0, -0.05), width=10.0, height=0.1)
    a = Block(id="a", position=(0.0, 1.05), width=0.3, height=0.1)
    b = Block(id="b", position=(1.0, 1.05), width=0.3, height=0.1)
    sim = Simulation(horizon=horizon, remove_below=remove_below)
    return Stimulus(id="s", scene=Scene(bodies=(a, b), statics=(shelf, floor), simulation=sim),
                    query=Query("off_table", {"level": 0.9}))


def test_bodies_below_the_level_leave_the_world_and_count_as_fallen():
    stim = _shelf_scene(remove_below=0.9)
    r = rollout(stim.scene)
    assert list(r.culled) == [False, True] and not r.removed.any()
    assert 0.8 < r.final[1, 1] < 0.9  # kept the state it had when it crossed the level (checked once a frame)
    assert r.final[0, 1] == pytest.approx(1.05, abs=1e-3)
    assert evaluate(stim.query, r, stim) == 1.0
    assert evaluate(Query("body_falls", {"body": "b", "level": 0.9}), r, stim) == 1.0
    assert r.stopped_early
    # Without the level the block lands on the floor; the answer is the same, the rollout longer.
    plain = _shelf_scene()
    r0 = rollout(plain.scene)
    assert r0.culled is not None and not r0.culled.any() and r0.final[1, 1] < 0.1
    assert evaluate(plain.query, r0, plain) == 1.0 and r0.steps > r.steps


def test_culling_matches_the_plain_loop_and_early_stop():
    stim = _shelf_scene(remove_below=0.9)
    full = rollout(stim.scene, early_stop=False)
    assert np.array_equal(plain_rollout(stim.scene), full.final)
    assert np.array_equal(rollout(stim.scene).final, full.final)


def test_culled_and_removed_bodies_differ():
    from ipe.scene import Intervention

    stim = _shelf_scene(remove_below=0.9)
    r = rollout(stim.scene, Schedule(interventions=(Intervention("remove", 0.1, ("a",)),)))
    assert list(r.removed) == [True, False] and list(r.culled) == [False, True]
    assert math.isnan(evaluate(Query("body_falls", {"body": "a", "level": 0.9}), r, stim))
    assert evaluate(Query("off_table", {"level": 0.9}), r, stim) == 1.0
