import json
import math
import re

import pytest

import ipe
from ipe.errors import InputError
from ipe.scene import (
    Ball,
    Block,
    Scene,
    Simulation,
    StaticBox,
    StaticRegularPolygon,
    Stimulus,
    load_stimuli,
    parse_stimulus_set,
    save_stimuli,
    stimulus_set_to_dict,
)


def test_round_trip_is_exact(tmp_path, demo):
    p1 = save_stimuli(demo, tmp_path / "a.json")
    again = load_stimuli(p1)
    assert stimulus_set_to_dict(again) == stimulus_set_to_dict(demo)
    p2 = save_stimuli(again, tmp_path / "b.json")
    assert p1.read_bytes() == p2.read_bytes()


def test_simulation_steps():
    sim = Simulation(time_step=1 / 60, substeps=4, horizon=2.0)
    assert sim.dt == pytest.approx(1 / 240)
    assert sim.n_steps == 480


def test_masses_and_sizes():
    b = Block(id="a", position=(0, 0), width=0.3, height=0.1, density=10.0)
    assert b.effective_mass == pytest.approx(0.3)
    b2 = Block(id="a", position=(0, 0), width=0.3, height=0.1, mass=2.0)
    assert b2.effective_density == pytest.approx(2.0 / 0.03)
    ball = Ball(id="c", position=(0, 0), radius=0.5)
    assert ball.area == pytest.approx(math.pi * 0.25)
    assert ball.short_side == 1.0


def test_regular_polygon_vertices():
    p = StaticRegularPolygon(id="p", sides=4, radius=2.0, position=(1.0, 1.0))
    v = p.local_vertices()
    assert v[0] == pytest.approx((2.0, 0.0))
    assert v[1] == pytest.approx((0.0, 2.0), abs=1e-12)


def _doc(demo):
    return json.loads(json.dumps(stimulus_set_to_dict(demo)))


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d["stimuli"][2]["scene"]["bodies"][3].update(width=-1.0),
         ["stimulus 'tower_002'", "scene.bodies[3].width", "> 0"]),
        (lambda d: d["stimuli"][0]["scene"]["bodies"][0].update(position=[float("nan"), 0.05]),
         ["stimulus 'tower_000'", "scene.bodies[0].position[0]", "finite"]),
        (lambda d: d["stimuli"][1]["scene"]["bodies"][0].update(colour="#ffffff"),
         ["stimulus 'tower_001'", "scene.bodies[0]", "'colour'"]),
        (lambda d: d.update(schema_version=2), ["schema_version"]),
        (lambda d: d["stimuli"][4]["scene"]["bodies"][1].update(
            position=d["stimuli"][4]["scene"]["bodies"][0]["position"]),
         ["stimulus 'tower_004'", "overlap"]),
        (lambda d: d["stimuli"][0].update(query={"name": "explodes"}), ["stimulus 'tower_000'", "unknown query"]),
        (lambda d: d["stimuli"][0].update(query={"name": "body_falls", "body": "zz"}), ["unknown body 'zz'"]),
        (lambda d: d["stimuli"][3].update(id="tower_002"), ["duplicate stimulus id 'tower_002'"]),
        (lambda d: d.update(stimuli=[]), ["empty"]),
    ],
)
def test_validation_errors_name_the_place(demo, mutate, expected):
    d = _doc(demo)
    mutate(d)
    with pytest.raises(InputError) as err:
        parse_stimulus_set(d, source="set.json")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("set.json")
    for part in expected:
        assert part in msg


def test_overlap_tolerance_allows_touching():
    a = Block(id="a", position=(0, 0.05), width=0.3, height=0.1)
    b = Block(id="b", position=(0, 0.15 - 0.0005), width=0.3, height=0.1)  # 0.5 mm: under 1 % of 0.1 m
    scene = Scene(bodies=(a, b))
    from ipe.geometry import find_overlaps

    assert find_overlaps(scene) == []
    c = Block(id="b", position=(0, 0.15 - 0.005), width=0.3, height=0.1)
    assert len(find_overlaps(Scene(bodies=(a, c)))) == 1


def test_as_stimulus_set_rejects_duplicates(demo):
    with pytest.raises(InputError):
        ipe.IPE(n_samples=1).predict([demo[0], demo[0]])


# --------------------------------------------------------------------------- stimuli built in Python


@pytest.mark.parametrize("change, message", [
    ({"width": -0.3}, "scene.bodies[0].width: must be > 0"),
    ({"density": -1.0}, "scene.bodies[0].density: must be > 0"),
    ({"mass": 0.0}, "scene.bodies[0].mass: must be > 0"),
    ({"position": (float("nan"), 0.05)}, "scene.bodies[0].position[0]: must be finite"),
    ({"id": "bad id/x"}, "scene.bodies[0].id: invalid value"),
])
def test_python_built_stimuli_get_the_checks_of_a_file(change, message):
    """A bad Block made in Python is a one-line InputError in validate_stimulus and simulate, not an abort
    inside Chipmunk (a negative size or density used to kill the interpreter)."""
    import ipe
    from ipe.scene import validate_stimulus

    ground = StaticBox(id="ground", position=(0, -0.05), width=2, height=0.1)
    block = dict(id="b0", position=(0, 0.05), width=0.3, height=0.1) | change
    stim = Stimulus(id="s", scene=Scene(bodies=(Block(**block),), statics=(ground,)))
    with pytest.raises(InputError, match=re.escape(f"stimulus 's': {message}")):
        validate_stimulus(stim)
    with pytest.raises(InputError, match=re.escape(message)):
        ipe.simulate(stim, n_samples=1, progress=False)


def test_simulate_refuses_things_that_are_not_stimuli():
    import ipe

    with pytest.raises(InputError, match="expected Stimulus objects, got int"):
        ipe.IPE(n_samples=1).predict([1])
    with pytest.raises(InputError, match="expected stimuli"):
        ipe.simulate(3.5, n_samples=1)
