"""Kill test: SIGKILL the server in the middle of sessions, restart it on the same database, lose nothing.

Simulated participants (``ipe.webexperiment.client``, the page's protocol: one
idempotency key per answer, retried until acknowledged) answer while the
server runs as a child process. The server is killed with SIGKILL once
some answers were acknowledged. Then, before anything restarts, the
database file must already hold every answer acknowledged so far (commit
before 200). The server restarts on the same port and database; the
participants' retries fill in the rest; in the end every participant has
exactly one row per trial and no key is stored twice.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time

import pytest

from ipe.webexperiment.client import ServerProcess, run_many
from ipe.webexperiment.export import load_experiment, response_table
from ipe.scenefile import save_stimuli
from ipe.stimuli.towers import generate_towers

N_PARTICIPANTS = 8


@pytest.fixture(scope="module")
def stimuli_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("kill") / "towers.json"
    save_stimuli(generate_towers(9, seed=5, n_blocks=3), path)  # 1 practice + 8 test trials
    return path


def _raw_get(port: int, path: str) -> tuple[int, bytes]:
    """A GET with the path sent byte for byte (no client-side normalisation of ``..``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def _acked(logs_holder):
    return {k: v for log in list(logs_holder) for k, v in log.acked.copy().items()}


def test_sigkill_mid_session_loses_nothing_and_duplicates_nothing(stimuli_file, tmp_path):
    db = tmp_path / "lab.db"
    server = ServerProcess(stimuli_file, db, extra=["--practice", "1", "--seed", "2"])
    port = server.port
    assert server.base.startswith("http://127.0.0.1:"), "the default bind is 127.0.0.1"
    # Static files: no path traversal, even with raw (unnormalised) paths.
    assert _raw_get(port, "/static/app.js")[0] == 200
    for path in ("/static/../store.py", "/static/..%2f..%2fpyproject.toml", "/static/%2e%2e/server.py",
                 "/static/app.js/../../store.py", "/../../../etc/passwd", "/static/%2e%2e%2f%2e%2e%2fstore.py",
                 "/static/..\\store.py", "/api/images/..%2fstore.py"):
        status, body = _raw_get(port, path)
        assert 400 <= status < 500 and b"sqlite" not in body and b"root:" not in body, (path, status)
    pids = [f"k{i:02d}" for i in range(N_PARTICIPANTS)]
    result: dict = {}
    # The participants live in their own thread (and event loop); they only see HTTP.
    live_logs: list = []
    thread = threading.Thread(target=lambda: result.update(
        logs=asyncio.run(run_many(server.base, pids, seed=7, repeat_p=0.25, timeout=120, think=0.05,
                             logs=live_logs))))
    thread.start()
    t0 = time.monotonic()
    while sum(len(log.acked) for log in live_logs) < 25 and time.monotonic() - t0 < 60:
        time.sleep(0.01)
    server.kill()  # SIGKILL: no shutdown handler runs
    acked_at_kill = _acked(live_logs)
    total = N_PARTICIPANTS * 9
    assert 25 <= len(acked_at_kill) < total, "the kill must come in the middle of the sessions"
    con = sqlite3.connect(db)
    stored = {r[0]: r[1:] for r in con.execute("SELECT key, participant, phase, trial_index, response "
                                               "FROM responses")}
    con.close()
    missing = [k for k in acked_at_kill if k not in stored]
    assert not missing, f"{len(missing)} acknowledged answers are not in the database after SIGKILL"
    for k, body in acked_at_kill.items():
        assert stored[k][:3] == (body["participant"], body["phase"], body["trial_index"])
    time.sleep(0.5)  # the participants keep retrying against a dead port
    server2 = ServerProcess(stimuli_file, db, port=port, extra=["--practice", "1", "--seed", "2"])
    try:
        thread.join(timeout=120)
        assert not thread.is_alive()
    finally:
        server2.kill()
    logs = result["logs"]
    assert all(not log.errors for log in logs), [log.errors for log in logs if log.errors]
    assert sum(log.retries for log in logs) > 0, "some requests must have met the dead server"
    assert all(log.completion_code for log in logs)
    acked = _acked(logs)
    assert len(acked) == total
    store, materials = load_experiment(db)
    try:
        rows = store.rows(None)
        table = response_table(store, materials)  # validates: no (participant, stimulus, trial) twice
    finally:
        store.close()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys)) == total
    assert {r["key"]: (r["participant"], r["phase"], r["trial_index"], r["response"]) for r in rows} == {
        k: (b["participant"], b["phase"], b["trial_index"],
            float(b["response"]) if not isinstance(b["response"], str) else b["response"]) for k, b in acked.items()}
    assert len(table) == N_PARTICIPANTS * 8
    assert table.groupby("participant").size().eq(8).all()
