"""Load test of the browser experiment's server on loopback: many participants at once, nothing lost.

    python benchmarks/load_test.py                      # 50 participants x 60 test trials (+2 practice)
    python benchmarks/load_test.py --participants 10 --trials 10 --out /tmp/load.json

It writes a stimulus set (BHT towers), starts ``ipe experiment serve`` as a
child process on 127.0.0.1 with a fresh SQLite database, and runs the
simulated participants of :mod:`ipe.experiment.client` concurrently (one
asyncio task and one keep-alive connection each, no think time): each opens
a session, posts every answer with its own idempotency key until it is
acknowledged, re-posts a fraction ``--repeat`` of acknowledged answers
(as a page does when an acknowledgement is lost), and asks for its
completion code. Then it reads the database back and checks:

* lost = acknowledged answers missing from the database (must be 0);
* duplicated = rows beyond one per acknowledged key, and repeated posts
  that were stored again instead of being reported as duplicates (must be 0);
* every participant has exactly one row per trial and a completion code;
* the whole run ends within ``--timeout`` seconds.

It prints and writes (``--out``, JSON) the request throughput and the
latency percentiles of ``POST /api/responses`` as the clients saw them.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run(participants: int, trials: int, practice: int = 2, repeat: float = 0.1, timeout: float = 300.0,
        seed: int = 0, workdir: Path | None = None) -> dict:
    """Run the load test (see the module docstring) and return its measurements and checks."""
    from ipe.experiment.client import ServerProcess, run_many
    from ipe.experiment.export import load_experiment, response_table
    from ipe.scene import save_stimuli
    from ipe.stimuli.towers import generate_towers

    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    work = Path(tmp.name) if tmp else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        stim_path = work / "towers.json"
        save_stimuli(generate_towers(trials + practice, seed=seed, n_blocks=4), stim_path)
        db = work / "load.db"
        if db.exists():
            db.unlink()
        t_start = time.perf_counter()
        server = ServerProcess(stim_path, db, extra=["--practice", str(practice), "--seed", str(seed)])
        startup_s = time.perf_counter() - t_start
        pids = [f"load{i:03d}" for i in range(participants)]
        try:
            cpu_at_start = _cpu_seconds(server.proc.pid)
            t0 = time.perf_counter()
            c0 = time.process_time()
            logs = asyncio.run(run_many(server.base, pids, seed=seed, repeat_p=repeat, timeout=timeout))
            wall = time.perf_counter() - t0
            client_cpu = time.process_time() - c0
            server_cpu = _cpu_seconds(server.proc.pid)
        finally:
            server.kill()
        store, materials = load_experiment(db)
        try:
            rows = store.rows(None)
            table = response_table(store, materials)
        finally:
            store.close()
    finally:
        if tmp:
            tmp.cleanup()
    acked = {k: v for log in logs for k, v in log.acked.items()}
    stored_keys = [r["key"] for r in rows]
    lost = len(set(acked) - set(stored_keys))
    duplicated = (len(stored_keys) - len(set(stored_keys))) + len(set(stored_keys) - set(acked)) + \
        sum(log.repeats - log.duplicates_seen for log in logs)
    per_participant = table.groupby("participant").size() if len(table) else None
    complete_rows = per_participant is not None and len(per_participant) == participants and \
        bool(per_participant.eq(trials).all())
    lat = np.array([x for log in logs for x in log.latencies]) * 1000.0
    n_requests = sum(log.requests for log in logs)
    result = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "participants": participants, "test_trials": trials, "practice_trials": practice, "repeat_p": repeat,
        "answers_expected": participants * (trials + practice), "answers_acknowledged": len(acked),
        "rows_stored": len(rows), "repeated_posts": sum(log.repeats for log in logs),
        "lost": lost, "duplicated": duplicated, "errors": sum(len(log.errors) for log in logs),
        "retries": sum(log.retries for log in logs), "completed": sum(bool(log.completion_code) for log in logs),
        "one_row_per_trial": complete_rows, "requests": n_requests, "wall_s": round(wall, 3),
        "server_startup_s": round(startup_s, 3), "requests_per_s": round(n_requests / wall, 1),
        "answers_per_s": round(len(acked) / wall, 1),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "server_cpu_ms_per_request": None if server_cpu is None or cpu_at_start is None else
        round(1000 * (server_cpu - cpu_at_start) / n_requests, 3),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "latency_ms": {q: round(float(np.percentile(lat, p)), 2) for q, p in
                       (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))} if lat.size else {},
        "timeout_s": timeout,
    }
    result["ok"] = (lost == 0 and duplicated == 0 and result["errors"] == 0 and complete_rows
                    and result["completed"] == participants
                    and result["answers_acknowledged"] == result["answers_expected"] and wall < timeout)
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--participants", type=int, default=50)
    ap.add_argument("--trials", type=int, default=60, help="test trials per participant")
    ap.add_argument("--practice", type=int, default=2)
    ap.add_argument("--repeat", type=float, default=0.1, help="fraction of answers posted twice")
    ap.add_argument("--timeout", type=float, default=300.0, help="bound on the whole run (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "load.json")
    a = ap.parse_args(argv)
    os.environ.setdefault("IPE_NO_PROGRESS", "1")
    res = run(a.participants, a.trials, a.practice, a.repeat, a.timeout, a.seed)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    lat = res["latency_ms"]
    print(f"{res['participants']} participants x {res['test_trials']} test (+{res['practice_trials']} practice) "
          f"trials, {res['repeated_posts']} repeated posts, {res['retries']} retries")
    print(f"answers: expected {res['answers_expected']}, acknowledged {res['answers_acknowledged']}, "
          f"stored {res['rows_stored']}; lost {res['lost']}, duplicated {res['duplicated']}, errors {res['errors']}")
    print(f"wall {res['wall_s']} s; {res['requests_per_s']} requests/s, {res['answers_per_s']} answers/s; "
          f"POST /api/responses latency p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, p99 {lat.get('p99')} ms, "
          f"max {lat.get('max')} ms")
    print(f"CPU: server {res['server_cpu_s']} s (start-up included; {res['server_cpu_ms_per_request']} ms per request), "
          f"simulated participants {res['client_cpu_s']} s; "
          f"machine load average {res['load_average_1min']}")
    print("OK" if res["ok"] else "FAILED")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
