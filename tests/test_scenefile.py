"""Scene files (JSON v1): exact round trips, errors that name the file, the stimulus and the field,
and loading that checks each stimulus once."""

import json

import pytest

import ipe
import ipe.checks
import ipe.scenefile
from ipe.checks import StimulusSet
from ipe.errors import InputError
from ipe.scenefile import as_stimulus_set, load_stimuli, parse_stimulus_set, save_stimuli, stimulus_set_to_dict


def test_round_trip_is_exact(tmp_path, demo):
    p1 = save_stimuli(demo, tmp_path / "a.json")
    again = load_stimuli(p1)
    assert stimulus_set_to_dict(again) == stimulus_set_to_dict(demo)
    p2 = save_stimuli(again, tmp_path / "b.json")
    assert p1.read_bytes() == p2.read_bytes()


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
        (lambda d: d["stimuli"][0]["scene"]["bodies"][0].update(width="wide"),
         ["stimulus 'tower_000': scene.bodies[0].width: must be a number, got a string"]),
        (lambda d: d["stimuli"][0]["scene"]["bodies"][0].update(position=[0, 1, 2]),
         ["stimulus 'tower_000': scene.bodies[0].position: must be a pair [x, y], got 3 values"]),
        (lambda d: d["stimuli"][0]["scene"]["bodies"][0].update(id="b0\n"),
         ["stimulus 'tower_000': scene.bodies[0].id: invalid value 'b0\\n'"]),
        (lambda d: d["stimuli"][0]["scene"].update(simulation={"substeps": 2.5}),
         ["stimulus 'tower_000': scene.simulation.substeps: must be an integer, got 2.5"]),
        (lambda d: d["stimuli"][0]["scene"].update(simulation={"damping": 1.5}),
         ["stimulus 'tower_000': scene.simulation: damping: must be in (0, 1]"]),
        (lambda d: d["stimuli"][0]["scene"].update(simulation={"collision_noise_labels": ["a", 1]}),
         ["scene.simulation.collision_noise_labels: must be a non-empty list of labels (strings), got ['a', 1]"]),
        (lambda d: d["stimuli"][0]["scene"].update(bodies=[]),
         ["stimulus 'tower_000': scene.bodies: a scene needs at least one dynamic body"]),
        (lambda d: d["stimuli"][0].update(interventions=[{"type": "remove", "time": 0.5}]),
         ["stimulus 'tower_000': interventions[0]: a 'remove' intervention needs 'bodies'"]),
        (lambda d: d["stimuli"][0].update(metadata=[]), ["stimulus 'tower_000': metadata: must be an object, got an array"]),
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


def test_loading_a_file_checks_each_stimulus_once(tmp_path, demo, monkeypatch):
    """The stimulus-level checks run once per stimulus as the set is made; the set is then trusted:
    no JSON round trip, no second check when it is passed on."""
    path = save_stimuli(demo, tmp_path / "s.json")
    checked = []
    real = ipe.checks.check_stimulus
    monkeypatch.setattr(ipe.checks, "check_stimulus", lambda stim, **kw: checked.append(stim.id) or real(stim, **kw))
    parsed = []
    real_parse = ipe.scenefile._stimulus_fields
    with monkeypatch.context() as m:
        m.setattr(ipe.scenefile, "stimulus_to_dict", lambda s: pytest.fail("a stimulus was written to JSON again"))
        m.setattr(ipe.scenefile, "_stimulus_fields", lambda d: parsed.append(d["id"]) or real_parse(d))
        loaded = load_stimuli(path)
    assert checked == demo.ids and parsed == demo.ids
    assert as_stimulus_set(loaded) is loaded
    ipe.simulate(loaded, n_samples=1, progress=False)
    assert checked == demo.ids


def test_a_set_made_in_python_is_checked_once_when_made(demo, monkeypatch):
    checked = []
    real = ipe.checks.check_stimulus
    monkeypatch.setattr(ipe.checks, "check_stimulus", lambda stim, **kw: checked.append(stim.id) or real(stim, **kw))
    few = StimulusSet(tuple(demo)[:2])
    assert checked == demo.ids[:2]
    assert as_stimulus_set(few) is few
    as_stimulus_set([demo[0]])
    assert checked == demo.ids[:2] + demo.ids[:1]


def test_a_set_read_without_the_overlap_check_gets_it_before_it_is_used(demo):
    d = json.loads(json.dumps(stimulus_set_to_dict(demo)))
    b = d["stimuli"][0]["scene"]["bodies"]
    b[1]["position"] = b[0]["position"]
    loose = parse_stimulus_set(d, check_overlap=False)
    assert not loose.overlaps_checked
    with pytest.raises(InputError, match="stimulus 'tower_000': scene: bodies 'b0' and 'b1' overlap"):
        as_stimulus_set(loose)
