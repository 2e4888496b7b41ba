"""Load test of the browser experiment's server on loopback: many participants at once, nothing lost.

    python benchmarks/load_test.py                      # 50 participants x 60 test trials (+2 practice)
    python benchmarks/load_test.py --participants 10 --trials 10 --out /tmp/load.json

What it does and checks: see :mod:`ipe.webexperiment.loadtest`. It prints and
writes (``--out``, JSON) the request throughput and the latency percentiles
of ``POST /api/responses``; exit status 1 when a check fails (an answer lost
or duplicated, a participant without a completion code, the time bound).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
    from ipe.webexperiment.loadtest import run

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
