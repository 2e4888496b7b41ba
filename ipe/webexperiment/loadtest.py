"""A load test of the experiment server on loopback: many simulated participants at once, nothing lost.

:func:`run` writes a stimulus set (BHT towers), starts ``ipe experiment
serve`` as a child process on 127.0.0.1 with a fresh SQLite database, and
runs the simulated participants of :mod:`ipe.webexperiment.client`
concurrently (one asyncio task and one keep-alive connection each, no think
time). Each opens a session, posts every answer with its own idempotency
key until it is acknowledged, re-posts a fraction of acknowledged answers
(as a page does when an acknowledgement is lost) and asks for its
completion code. Then the database is read back and checked:

* lost = acknowledged answers missing from the database (must be 0);
* duplicated = rows beyond one per acknowledged key, plus repeated posts
  that were stored again instead of being reported as duplicates (must be 0);
* every participant has exactly one row per trial and a completion code;
* the run ends within the time bound.

Throughput and the latency percentiles of ``POST /api/responses`` (as
the clients saw them) come with it. ``benchmarks/load_test.py`` is the
command-line front end; ``tests/webexperiment/test_loadtest.py`` runs a small one.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ..scenefile import save_stimuli
from ..stimuli.towers import generate_towers
from .client import ServerProcess, run_many
from .export import load_experiment, response_table


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; ``None`` elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run(participants: int, trials: int, practice: int = 2, repeat: float = 0.1, timeout: float = 300.0,
        seed: int = 0, workdir: Path | None = None) -> dict:
    """Run the load test (see the module docstring) and return its measurements and checks as a dict.

    ``participants`` simulated participants answer ``practice`` + ``trials``
    trials each, all at once; ``repeat`` is the fraction of acknowledged
    answers posted a second time; the run must end within ``timeout`` s.
    ``ok`` is true when nothing was lost or duplicated, everybody finished
    and the time bound held. ``workdir`` keeps the stimulus file and the
    database (default: a temporary directory).
    """
    tmp = tempfile.TemporaryDirectory() if workdir is None else None
    work = Path(tmp.name) if tmp else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        stim_path = work / "towers.json"
        save_stimuli(generate_towers(trials + practice, seed=seed, n_blocks=4), stim_path)
        db = work / "load.db"
        if db.exists():
            db.unlink()
        logs, timing = _serve_and_answer(stim_path, db, participants, practice, repeat, timeout, seed)
        store, materials = load_experiment(db)
        try:
            rows = store.rows(None)
            table = response_table(store, materials)
        finally:
            store.close()
    finally:
        if tmp:
            tmp.cleanup()
    result = check_run(logs, rows, participants, trials, practice)
    result.update(_measurements(logs, timing, result["answers_acknowledged"]))
    result.update({"repeat_p": repeat, "validated_test_rows": len(table), "timeout_s": timeout})
    result["ok"] = result["ok"] and timing["wall"] < timeout
    return _in_order(result)


_ORDER = ("participants", "test_trials", "practice_trials", "answers_expected", "answers_acknowledged", "rows_stored",
          "repeated_posts", "lost", "duplicated", "errors", "completed", "one_row_per_trial", "ok", "machine",
          "repeat_p", "validated_test_rows", "retries", "requests", "wall_s", "server_startup_s", "requests_per_s",
          "answers_per_s", "server_cpu_s", "client_cpu_s", "server_cpu_ms_per_request", "load_average_1min",
          "latency_ms", "timeout_s")


def _in_order(result: dict) -> dict:
    """The result's keys in the order the report has always listed them."""
    return {k: result[k] for k in _ORDER if k in result} | {k: v for k, v in result.items() if k not in _ORDER}


def _serve_and_answer(stim_path: Path, db: Path, participants: int, practice: int, repeat: float, timeout: float,
                      seed: int) -> tuple[list, dict]:
    """Start the server, let every simulated participant answer at once, kill the server; logs and timings."""
    t_start = time.perf_counter()
    # Every simulated participant comes from this one address: lift the per-client rate limits (the
    # limiter still runs, so its cost is in the numbers).
    server = ServerProcess(stim_path, db, extra=["--practice", str(practice), "--seed", str(seed),
                                                 "--session-rate", "100000/minute",
                                                 "--answer-rate", "1000000/minute",
                                                 "--answer-rate-total", "1000000/minute"])
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
    return logs, {"startup": startup_s, "wall": wall, "client_cpu": client_cpu, "server_cpu": server_cpu,
                  "cpu_at_start": cpu_at_start}


def _measurements(logs: list, timing: dict, answers_acknowledged: int) -> dict:
    """Throughput, CPU and the latency percentiles of ``POST /api/responses`` as the clients saw them."""
    lat = np.array([x for log in logs for x in log.latencies]) * 1000.0
    n_requests = sum(log.requests for log in logs)
    wall, server_cpu, cpu_at_start = timing["wall"], timing["server_cpu"], timing["cpu_at_start"]
    return {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "retries": sum(log.retries for log in logs), "requests": n_requests, "wall_s": round(wall, 3),
        "server_startup_s": round(timing["startup"], 3), "requests_per_s": round(n_requests / wall, 1),
        "answers_per_s": round(answers_acknowledged / wall, 1),
        "server_cpu_s": None if server_cpu is None else round(server_cpu, 2),
        "client_cpu_s": round(timing["client_cpu"], 2),
        "server_cpu_ms_per_request": None if server_cpu is None or cpu_at_start is None else
        round(1000 * (server_cpu - cpu_at_start) / n_requests, 3),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "latency_ms": {q: round(float(np.percentile(lat, p)), 2) for q, p in
                       (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))} if lat.size else {},
    }


def check_run(logs, rows: list[dict], participants: int, trials: int, practice: int) -> dict:
    """Compare what the clients saw acknowledged (``logs``) with the stored ``rows`` (``Store.rows(None)``).

    Returns the counts of the module docstring (``lost``, ``duplicated``,
    ``errors``, ``completed``, ``one_row_per_trial``, …) and ``ok``.
    """
    acked = {k: v for log in logs for k, v in log.acked.items()}
    stored_keys = [r["key"] for r in rows]
    lost = len(set(acked) - set(stored_keys))
    duplicated = (len(stored_keys) - len(set(stored_keys))) + len(set(stored_keys) - set(acked)) + \
        sum(log.repeats - log.duplicates_seen for log in logs)
    per = {}
    for r in rows:
        per.setdefault(r["participant"], {"test": set(), "practice": set()})[r["phase"]].add(r["trial_index"])
    one_row = len(per) == participants and all(
        v["test"] == set(range(trials)) and v["practice"] == set(range(practice)) for v in per.values()) and \
        len(rows) == participants * (trials + practice)
    out = {"participants": participants, "test_trials": trials, "practice_trials": practice,
           "answers_expected": participants * (trials + practice), "answers_acknowledged": len(acked),
           "rows_stored": len(rows), "repeated_posts": sum(log.repeats for log in logs), "lost": lost,
           "duplicated": duplicated, "errors": sum(len(log.errors) for log in logs),
           "completed": sum(bool(log.completion_code) for log in logs), "one_row_per_trial": one_row}
    out["ok"] = (lost == 0 and duplicated == 0 and out["errors"] == 0 and one_row and out["completed"] == participants
                 and out["answers_acknowledged"] == out["answers_expected"])
    return out
