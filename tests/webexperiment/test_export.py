"""The experiment's export: the response table read back as the schema, materials, an empty database."""

from __future__ import annotations

import json

import pandas as pd

from ipe.cli import main
from ipe.humans import load_responses, validate_responses
from ipe.scenefile import save_stimuli
from ipe.webexperiment import Store, design_json
from ipe.webexperiment.export import export_materials, export_responses
from webexperiment_helpers import answer, session


def test_export_cli_reads_back_as_the_schema(server, materials, towers, tmp_path, capsys):
    client, store = server
    for pid in ("a1", "b2"):
        s = session(client, pid)
        for i in range(len(s["test"])):
            client.post("/api/responses", json=answer(s, "test", i, (i * 3) % 7 + 1))
        client.post("/api/responses", json=answer(s, "practice", 0, 2))
    out = tmp_path / "responses.csv"
    assert main(["experiment", "export", str(store.path), "--out", str(out), "--materials",
                 str(tmp_path / "mat")]) == 0
    df = validate_responses(load_responses(out), stimuli=materials.test_set())
    assert len(df) == 2 * materials.n_test and set(df["participant"]) == {"a1", "b2"}
    assert df["rt"].eq(812.0).all()
    stim_path = tmp_path / "towers.json"
    save_stimuli(towers, stim_path)
    assert main(["humans", "summary", str(out), "--stimuli", str(stim_path), "--scale", "rating:1-7"]) == 0
    cond = pd.read_csv(tmp_path / "mat" / "conditions.csv")
    assert cond["stimulus_id"].tolist() == [s.id for s in materials.stimuli]
    assert cond["phase"].tolist() == ["practice"] * 2 + ["test"] * materials.n_test
    assert all((tmp_path / "mat" / p).read_bytes()[:4] == b"\x89PNG" for p in cond["image"])
    tl = json.loads((tmp_path / "mat" / "timeline_variables.json").read_text())
    assert tl[0]["stimulus_id"] == materials.stimuli[0].id and tl[-1]["truth"] is None
    assert main(["experiment", "export", str(store.path), "--out", str(tmp_path / "p.csv"),
                 "--phase", "practice"]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == 2


def test_export_of_an_empty_database(materials, tmp_path):
    db = tmp_path / "e.db"
    Store(db, design=design_json(materials), fingerprint=materials.fingerprint).close()
    t = export_responses(db, tmp_path / "e.csv")
    assert t.empty and (tmp_path / "e.csv").read_text().startswith("participant,stimulus_id,response")
    cond = export_materials(db, tmp_path / "m")
    assert len(cond) == len(materials.stimuli)
