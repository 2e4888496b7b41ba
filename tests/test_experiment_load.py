"""A small load test on loopback (the full one is ``benchmarks/load_test.py``, numbers in benchmarks/README.md).

20 simulated participants answer at once against a real server process
(``ipe experiment serve``); a fifth of the answers are posted twice. Nothing
may be lost or stored twice, everybody gets a completion code, and the run is
bounded in time.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "load_test.py"


def _load_test_module():
    spec = importlib.util.spec_from_file_location("ipe_load_test", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_concurrent_participants_lose_and_duplicate_nothing(tmp_path):
    res = _load_test_module().run(participants=20, trials=12, practice=1, repeat=0.2, timeout=60.0, seed=4,
                                  workdir=tmp_path)
    assert res["answers_expected"] == 20 * 13
    assert res["answers_acknowledged"] == res["rows_stored"] == 20 * 13
    assert res["lost"] == 0 and res["duplicated"] == 0 and res["errors"] == 0
    assert res["repeated_posts"] > 20, "the run must exercise repeated keys"
    assert res["completed"] == 20 and res["one_row_per_trial"]
    assert res["wall_s"] < 60.0
    assert res["latency_ms"]["p95"] > 0 and res["ok"]


def test_the_check_catches_a_lost_answer(tmp_path, monkeypatch):
    """The checks can fail: a server that acknowledges without storing is caught as 'lost'."""
    mod = _load_test_module()
    import ipe.experiment.export as export

    real_rows = export.Store.rows

    def drop_one(self, phase="test"):
        rows = real_rows(self, phase)
        return rows[1:]

    monkeypatch.setattr(export.Store, "rows", drop_one)
    res = mod.run(participants=2, trials=3, practice=0, repeat=0.0, timeout=60.0, seed=1, workdir=tmp_path)
    assert res["lost"] == 1 and not res["ok"]
