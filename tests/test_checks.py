"""Stimulus-level checks (ids, references, the query, overlaps) and the checked StimulusSet."""

import re

import pytest

import ipe
from ipe.checks import CONSTRAINTS, StimulusSet, check_stimulus
from ipe.errors import InputError
from ipe.scene import Block, Intervention, Query, Scene, StaticBox, Stimulus
from ipe.geometry import find_overlaps

GROUND = StaticBox(id="ground", position=(0, -0.05), width=2, height=0.1)


def block(bid="b0", x=0.0, y=0.05):
    return Block(id=bid, position=(x, y), width=0.3, height=0.1)


def stim(*bodies, query=Query("fall"), interventions=(), sid="s"):
    return Stimulus(id=sid, scene=Scene(bodies=bodies or (block(),), statics=(GROUND,)), query=query,
                    interventions=interventions)


def test_overlap_tolerance_allows_touching():
    a = Block(id="a", position=(0, 0.05), width=0.3, height=0.1)
    b = Block(id="b", position=(0, 0.15 - 0.0005), width=0.3, height=0.1)  # 0.5 mm: under 1 % of 0.1 m
    scene = Scene(bodies=(a, b))
    assert find_overlaps(scene) == []
    c = Block(id="b", position=(0, 0.15 - 0.005), width=0.3, height=0.1)
    assert len(find_overlaps(Scene(bodies=(a, c)))) == 1


def test_as_stimulus_set_rejects_duplicates(demo):
    with pytest.raises(InputError):
        ipe.IPE(n_samples=1).predict([demo[0], demo[0]])


@pytest.mark.parametrize("make, message", [
    (lambda: stim(block(), block(x=1.0)), "stimulus 's': scene.bodies[1].id: duplicate id 'b0' (also scene.bodies[0])"),
    (lambda: stim(Block(id="ground", position=(0, 0.05), width=0.3, height=0.1)),
     "stimulus 's': scene.statics[0].id: duplicate id 'ground' (also scene.bodies[0])"),
    (lambda: stim(interventions=(Intervention("remove", 0.0, ("zz",)),)),
     "stimulus 's': interventions[0].bodies: unknown body 'zz'"),
    (lambda: stim(interventions=(Intervention("remove", 5.0, ("b0",)),)),
     "stimulus 's': interventions[0].time: time 5.0 is not inside the horizon (2.0 s)"),
    (lambda: stim(query=Query("nope")), "stimulus 's': query: unknown query 'nope'; known: "),
    (lambda: stim(query=Query("body_falls", {"body": "zz"})), "stimulus 's': query: unknown body 'zz'"),
    (lambda: stim(block(), block("b1", y=0.1)), "stimulus 's': scene: bodies 'b0' and 'b1' overlap by 0.05 m"),
    (lambda: Stimulus(id="s", scene=Scene(bodies=())), "stimulus 's': scene.bodies: a scene needs at least one"),
    (lambda: Stimulus(id="s", scene=Scene(bodies=(block(),)), metadata={"x": object()}),
     "stimulus 's': metadata: cannot be written as JSON"),
])
def test_a_stimulus_built_in_python_gets_the_checks_of_a_file(make, message):
    s = make()
    with pytest.raises(InputError, match=re.escape(message)):
        check_stimulus(s)
    with pytest.raises(InputError, match=re.escape(message)):
        StimulusSet((s,))
    with pytest.raises(InputError, match=re.escape(message)):
        ipe.simulate(s, n_samples=1, progress=False)


def test_check_stimulus_names_the_place_it_is_given():
    s = stim(interventions=(Intervention("remove", 0.0, ("zz",)),))
    with pytest.raises(InputError, match=re.escape("tower.json: interventions[0].bodies: unknown body 'zz'")):
        check_stimulus(s, where="tower.json")
    with pytest.raises(InputError, match=re.escape("interventions[0].bodies: unknown body 'zz'")):
        check_stimulus(s, where="")
    assert check_stimulus(stim()) is not None


def test_the_constraints_are_declared_once_in_order():
    assert [name for name, _ in CONSTRAINTS] == ["has_bodies", "unique_shape_ids", "interventions_refer_to_bodies",
                                                 "query_fits_scene", "json_data", "no_overlaps"]


def test_a_stimulus_set_refuses_what_is_not_a_stimulus_and_duplicate_ids():
    with pytest.raises(InputError, match="expected Stimulus objects, got int"):
        StimulusSet((1,))
    with pytest.raises(InputError, match="duplicate stimulus id 's'"):
        StimulusSet((stim(), stim()))
    assert StimulusSet([stim()]).stimuli == (stim(),)


def test_simulate_refuses_things_that_are_not_stimuli():
    with pytest.raises(InputError, match="expected Stimulus objects, got int"):
        ipe.IPE(n_samples=1).predict([1])
    with pytest.raises(InputError, match="expected stimuli"):
        ipe.simulate(3.5, n_samples=1)


def test_a_subset_of_a_checked_set_is_not_checked_again(demo, monkeypatch):
    import ipe.checks

    monkeypatch.setattr(ipe.checks, "check_stimulus", lambda *a, **k: pytest.fail("checked again"))
    part = demo.subset({demo.ids[3], demo.ids[1]})
    assert part.ids == [demo.ids[1], demo.ids[3]] and isinstance(part, StimulusSet) and part.name == demo.name
    with pytest.raises(InputError, match="no stimuli given"):
        demo.subset(["nope"])
