"""The experiment's SQLite store: WAL, unique keys, reopening only for the same experiment."""

from __future__ import annotations

import sqlite3

import pytest

from ipe.errors import InputError
from ipe.webexperiment import ExperimentConfig, Store, build_materials, design_json


def test_store_schema_wal_and_unique_keys(server):
    _, store = server
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ddl = con.execute("SELECT sql FROM sqlite_master WHERE name = 'responses'").fetchone()[0]
    assert "key TEXT NOT NULL UNIQUE" in ddl and "UNIQUE (participant, phase, trial_index)" in ddl
    con.close()


def test_reopening_needs_the_same_experiment(materials, towers, tmp_path):
    db = tmp_path / "x.db"
    s = Store(db, design=design_json(materials), fingerprint=materials.fingerprint)
    token = s.admin_token
    s.close()
    s2 = Store(db, design=design_json(materials), fingerprint=materials.fingerprint)
    assert s2.admin_token == token
    s2.close()
    other = build_materials(towers, ExperimentConfig(task="probability", practice=2))
    with pytest.raises(InputError, match="different experiment"):
        Store(db, design=design_json(other), fingerprint=other.fingerprint)
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite" * 100)
    with pytest.raises(InputError):
        Store(bad, design="{}", fingerprint="x")
