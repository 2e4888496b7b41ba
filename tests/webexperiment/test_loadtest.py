"""A small load test on loopback (the full one is ``benchmarks/load_test.py``, numbers in benchmarks/README.md).

20 simulated participants answer at once against a real server process
(``ipe experiment serve``); a fifth of the answers are posted twice. Nothing
may be lost or stored twice, everybody gets a completion code, and the run is
bounded in time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ipe.webexperiment.client import ParticipantLog
from ipe.webexperiment.loadtest import check_run, run

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "load_test.py"


def test_concurrent_participants_lose_and_duplicate_nothing(tmp_path):
    res = run(participants=20, trials=12, practice=1, repeat=0.2, timeout=60.0, seed=4, workdir=tmp_path)
    assert res["answers_expected"] == 20 * 13
    assert res["answers_acknowledged"] == res["rows_stored"] == 20 * 13
    assert res["lost"] == 0 and res["duplicated"] == 0 and res["errors"] == 0
    assert res["repeated_posts"] > 20, "the run must exercise repeated keys"
    assert res["completed"] == 20 and res["one_row_per_trial"]
    assert res["wall_s"] < 60.0
    assert res["latency_ms"]["p95"] > 0 and res["ok"]


def _fake_run():
    """Two participants x (1 practice + 2 test) answers, all acknowledged and stored once."""
    logs, rows = [], []
    for p in ("a", "b"):
        log = ParticipantLog(p, completion_code="C")
        for phase, n in (("practice", 1), ("test", 2)):
            for i in range(n):
                key = f"{p}-{phase}-{i}-xxxxxxxx"
                log.acked[key] = {"participant": p, "phase": phase, "trial_index": i}
                rows.append({"key": key, "participant": p, "phase": phase, "trial_index": i})
        log.repeats = log.duplicates_seen = 1
        logs.append(log)
    return logs, rows


@pytest.mark.parametrize("spoil,field", [
    (lambda logs, rows: rows.pop(1), "lost"),                                   # acknowledged, not stored
    (lambda logs, rows: rows.append(dict(rows[0])), "duplicated"),              # one key stored twice
    (lambda logs, rows: rows.append({**rows[0], "key": "zzzzzzzzz"}), "duplicated"),  # stored, never acknowledged
    (lambda logs, rows: setattr(logs[0], "duplicates_seen", 0), "duplicated"),  # a repeat stored again
    (lambda logs, rows: setattr(logs[1], "completion_code", None), "completed"),
])
def test_the_checks_can_fail(spoil, field):
    logs, rows = _fake_run()
    assert check_run(logs, rows, 2, 2, 1)["ok"]
    spoil(logs, rows)
    res = check_run(logs, rows, 2, 2, 1)
    assert not res["ok"]
    assert res[field] != (0 if field != "completed" else 2)


def test_benchmark_script_runs_and_writes_its_json(tmp_path):
    out = tmp_path / "load.json"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--participants", "3", "--trials", "2", "--practice", "0",
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lost 0, duplicated 0" in proc.stdout and out.is_file()
