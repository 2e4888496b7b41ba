"""The stimulus set's fingerprint (issue 24): recorded by the experiment, checked by summary, fit and compare.

Also the experiment's exports as a newcomer opens them: whole numbers without
``.0``, ISO 8601 times in ``/admin/participants.csv``, and practice trials
that show a tower that stays up and one that falls.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pandas as pd
import pytest

from ipe.cli import main
from ipe.errors import InputError
from ipe.webexperiment import ExperimentConfig, Store, build_materials, design_json
from ipe.webexperiment.export import export_materials, export_responses
from ipe.webexperiment.materials import choose_practice, materials_from_design
from ipe.fingerprint import check_stimulus_set, stimulus_fingerprint
from ipe.checks import StimulusSet
from ipe.scenefile import load_stimuli, save_stimuli
from ipe.stimuli.towers import generate_towers


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    d = tmp_path_factory.mktemp("fp")
    a, b = d / "a.json", d / "b.json"
    save_stimuli(generate_towers(6, seed=21, n_blocks=3, balanced=True), a)  # stable: T T T F F F
    save_stimuli(generate_towers(6, seed=5, n_blocks=3, balanced=True), b)  # the same ids, other towers
    return d, a, b


@pytest.fixture(scope="module")
def lab(sets):
    """An experiment database with two participants' test answers (whole-number ratings and rts)."""
    d, a, _ = sets
    m = build_materials(a, ExperimentConfig(task="will-it-fall", practice=2, seed=1))
    db = d / "lab.db"
    store = Store(db, design=design_json(m), fingerprint=m.fingerprint, stimulus_set=m.stimulus_set)
    for p in ("p1", "p2"):
        store.create_participant(p, None)
        for k, i in enumerate(m.order(p)):
            store.add_response({"key": f"{p}-key-{k:04d}", "participant": p, "phase": "test",
                                "stimulus_id": m.stimuli[i].id, "response": float((k + len(p)) % 7 + 1),
                                "rt": 812.0 + k, "trial_index": k, "condition": None})
    store.complete("p1", store.completion_code("p1"))
    store.close()
    out = d / "responses.csv"
    export_responses(db, out)
    return m, db, out


def test_fingerprint_is_the_content_not_the_file(sets, tmp_path):
    _, a, b = sets
    sa, sb = load_stimuli(a), load_stimuli(b)
    assert [s.id for s in sa] == [s.id for s in sb] and stimulus_fingerprint(sa) != stimulus_fingerprint(sb)
    assert re.fullmatch(r"[0-9a-f]{16}", stimulus_fingerprint(sa))
    shuffled = StimulusSet(stimuli=tuple(reversed(tuple(sa))), name="renamed", metadata={"note": "x"})
    assert stimulus_fingerprint(shuffled) == stimulus_fingerprint(a)  # order, name, metadata: same towers
    moved = StimulusSet(stimuli=(replace(sa[0], metadata={"moved": 1}),) + tuple(sa)[1:])
    assert stimulus_fingerprint(moved) == stimulus_fingerprint(sa)  # stimulus metadata is not content
    one = sa[0]
    block = one.scene.bodies[0]
    nudged = replace(one, scene=replace(one.scene, bodies=(replace(block, position=(block.position[0] + 1e-3,
                                                                                     block.position[1])),)
                                        + one.scene.bodies[1:]))
    assert stimulus_fingerprint((nudged,) + tuple(sa)[1:]) != stimulus_fingerprint(sa)


def test_recorded_in_database_and_export(lab, sets):
    m, db, out = lab
    _, a, _ = sets
    assert m.stimulus_set == stimulus_fingerprint(a)
    store = Store(db)
    assert store.stimulus_set == m.stimulus_set
    store.close()
    text = out.read_text()
    header, first = text.splitlines()[:2]
    assert header == "participant,stimulus_id,response,rt,trial_index,condition,stimulus_set"
    # whole numbers are written as integers: 4, not 4.0; rt 812, not 812.0
    assert re.fullmatch(r"p1,tower_\d{3},[1-7],81\d,0,," + m.stimulus_set, first), first
    assert ".0," not in text
    # the rebuilt materials (what the export uses) are the served ones: same practice, same fingerprint
    again = materials_from_design(design_json(m))
    assert [s.id for s in again.stimuli] == [s.id for s in m.stimuli] and again.fingerprint == m.fingerprint


def test_exported_materials_write_whole_numbers(lab, tmp_path):
    _, db, _ = lab
    export_materials(db, tmp_path / "mat")
    rows = (tmp_path / "mat" / "conditions.csv").read_text().splitlines()
    assert ",1,7," in rows[1] and ",1.0," not in rows[1]  # low, high of the 1-7 scale


def test_participants_csv_times_are_iso_8601(lab):
    from starlette.testclient import TestClient

    from ipe.webexperiment import create_app

    m, db, _ = lab
    store = Store(db, design=design_json(m), fingerprint=m.fingerprint)
    try:
        with TestClient(create_app(m, store)) as client:
            text = client.get("/admin/participants.csv",
                              headers={"authorization": f"Bearer {store.admin_token}"}).text
    finally:
        store.close()
    table = pd.read_csv(__import__("io").StringIO(text), dtype=str, keep_default_na=False)
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert all(re.fullmatch(iso, t) for t in table["created"]), text
    p1 = table.set_index("participant").loc["p1"]
    p2 = table.set_index("participant").loc["p2"]
    assert re.fullmatch(iso, p1["completed"]) and p2["completed"] == ""  # not finished: empty, not NaN


def test_practice_shows_a_tower_that_stands_and_one_that_falls(lab):
    m, _, _ = lab
    # the set's first three stand: the second practice slot goes to the first tower that falls
    assert [s.id for s in m.stimuli[:2]] == ["tower_000", "tower_003"]
    assert sorted(m.truths[:2]) == [1.0, 7.0]
    assert choose_practice([False, False, True, True], 2) == [0, 2]
    assert choose_practice([True, False, False], 2) == [0, 1]  # mixed already
    assert choose_practice([False, False, False], 2) == [0, 1]  # nothing falls: the head
    assert choose_practice([False, True], 1) == [0]
    assert choose_practice([None, None, None], 2) == [0, 1]  # landing: no outcome to mix


def _run(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_summary_checks_the_fingerprint(lab, sets, capsys, tmp_path):
    _, _, out = lab
    _, a, b = sets
    rc, stdout, err = _run(capsys, ["humans", "summary", str(out), "--stimuli", str(a)])
    assert rc == 0 and "tower_" in stdout and err == ""
    rc, stdout, err = _run(capsys, ["humans", "summary", str(out), "--stimuli", str(b)])
    lines = err.strip().splitlines()
    assert rc == 2 and stdout == "" and len(lines) == 1
    assert f"collected with stimulus set {stimulus_fingerprint(a)}" in lines[0]
    assert f"--stimuli {b} is set {stimulus_fingerprint(b)}" in lines[0]
    # a table that records no fingerprint: the summary runs and ends with a warning naming the stimulus file
    bare = tmp_path / "bare.csv"
    pd.read_csv(out, dtype=str).drop(columns=["stimulus_set"]).to_csv(bare, index=False)
    rc, stdout, err = _run(capsys, ["humans", "summary", str(bare), "--stimuli", str(b)])
    assert rc == 0 and "tower_" in stdout
    assert err.startswith("warning: ") and "does not record which stimulus set" in err and str(b) in err


def test_fit_and_compare_refuse_another_set(lab, sets, capsys, tmp_path):
    _, _, out = lab
    _, a, b = sets
    rc, _, err = _run(capsys, ["fit", str(out), "--stimuli", str(b), "--scale", "rating:1-7",
                               "--out", str(tmp_path / "fit")])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "collected with stimulus set" in err
    model = tmp_path / "m.csv"
    pd.DataFrame({"stimulus_id": [s.id for s in load_stimuli(b)], "query": "fall", "mean": 0.5}).to_csv(model,
                                                                                                     index=False)
    rc, _, err = _run(capsys, ["compare", "--humans", str(out), "--stimuli", str(b), "--no-ipe", "--model",
                               f"m={model}", "--out", str(tmp_path / "cmp")])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "collected with stimulus set" in err
    assert not (tmp_path / "fit").exists() and not (tmp_path / "cmp").exists()


def test_check_helper(sets):
    _, a, b = sets
    fa = stimulus_fingerprint(a)
    table = pd.DataFrame({"stimulus_set": [fa, None]})
    assert check_stimulus_set(table, a, "A", "t.csv", warn=pytest.fail) == fa
    with pytest.raises(InputError, match=r"^t\.csv was collected with stimulus set [0-9a-f]{16}, but B is set"):
        check_stimulus_set(table, b, "B", "t.csv")
    seen = []
    check_stimulus_set(pd.DataFrame({"x": [1]}), a, "A", "t.csv", warn=seen.append)
    assert len(seen) == 1 and "A" in seen[0]


def test_direction_feedback_for_a_tower_that_stays_up_is_valid_json():
    """Which way did it fall, when nothing fell: the truth is NaN, which JSON cannot carry (was a 500 forever)."""
    import json

    m = build_materials(generate_towers(2, seed=4, n_blocks=3), ExperimentConfig(task="direction", practice=1))
    anim = m.animations[0]
    assert anim["feedback"] == "Nothing fell." and anim["truth"] is None
    json.dumps(anim, allow_nan=False)
