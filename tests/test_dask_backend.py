"""The Dask backend: byte-identical to the process pool, robust to a killed worker, ≥100 rollouts per task.

Each test that needs a cluster starts a two-worker :class:`distributed.LocalCluster` (a few seconds); the
sets are tiny so the whole file runs in well under a minute of CPU.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import ipe  # noqa: E402
from ipe.cli import main  # noqa: E402
from ipe.errors import InputError  # noqa: E402
from ipe.montecarlo import DASK_MIN_BATCH, Batch, dask_batch_size, plan_tasks, simulate  # noqa: E402
from ipe.runner import RunContext, _run_task  # noqa: E402
from ipe.noise import NoiseParams  # noqa: E402
from ipe.scenefile import save_stimuli  # noqa: E402

NOISY = NoiseParams(sigma=0.2, phi=0.05)


@pytest.fixture(scope="module")
def four(demo):
    return ipe.StimulusSet(stimuli=tuple(demo)[:4], name="demo4")


@pytest.fixture(scope="module")
def four_file(four, tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("dask") / "four.json"
    save_stimuli(four, p)
    return p


@pytest.fixture(scope="module")
def client():
    """A two-worker LocalCluster shared by the API tests (processes, one thread each)."""
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster, set_as_default=False)
    yield c
    c.close()
    cluster.close()


# --------------------------------------------------------------------------- planning (no cluster)


def test_plan_tasks_covers_every_rollout_once_in_order():
    pairs = [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2)]
    tasks = plan_tasks(pairs, 70, 100)
    assert all(sum(b.stop - b.start for b in t) == 100 for t in tasks[:-1])
    assert 0 < sum(b.stop - b.start for b in tasks[-1]) <= 100
    flat = [(b.point, b.stimulus, s) for t in tasks for b in t for s in range(b.start, b.stop)]
    assert flat == [(p, s, k) for p, s in pairs for k in range(70)]


def test_dask_batches_carry_at_least_100_rollouts():
    for total, workers in [(10, 2), (1000, 2), (506_880, 2), (506_880, 64), (5, 1)]:
        assert DASK_MIN_BATCH <= dask_batch_size(total, workers) <= 1000


def test_a_worker_with_other_physics_refuses_to_run(four):
    ctx = RunContext(tuple(four), [NOISY], 0, [[s.query] for s in four], True, False, physics="ipe-physics-0 other")
    with pytest.raises(InputError, match="physics version"):
        _run_task((Batch(0, 0, 0, 1),), ctx)


# --------------------------------------------------------------------------- results


def test_cli_dask_csv_is_byte_identical_to_the_process_pool(four_file, tmp_path):
    """`ipe predict --backend dask` (its own LocalCluster) writes the same bytes as `--backend process`."""
    out = {}
    for backend in ("process", "dask"):
        pred, roll = tmp_path / f"{backend}.csv", tmp_path / f"{backend}-rollouts.csv"
        rc = main(["predict", str(four_file), "--sigma", "0.2", "--phi", "0.05", "--samples", "60", "--seed", "5",
                   "--workers", "2", "--backend", backend, "--out", str(pred), "--rollouts", str(roll)])
        assert rc == 0
        out[backend] = (pred.read_bytes(), roll.read_bytes())
    assert out["dask"][0] == out["process"][0]
    assert out["dask"][1] == out["process"][1]
    assert out["dask"][1].count(b"\n") == 1 + 4 * 60


def test_cli_sweep_on_dask_is_byte_identical_to_serial(four_file, tmp_path):
    """`ipe sweep --backend dask` writes the same sweep and per-point tables as one serial process."""
    out = {}
    for args in (["--backend", "serial"], ["--backend", "dask", "--workers", "2"]):
        sweep, scores = tmp_path / f"{args[1]}.csv", tmp_path / f"{args[1]}-scores.csv"
        assert main(["sweep", str(four_file), "--grid", "sigma=0,0.3", "--grid", "phi=0.05:0.1:2", "-n", "30",
                     "--seed", "2", "--scores", str(scores), "--no-progress", "--no-cache", "-o", str(sweep),
                     *args]) == 0
        out[args[1]] = (sweep.read_bytes(), scores.read_bytes())
    assert out["dask"] == out["serial"]
    assert out["dask"][0].count(b"\n") == 1 + 4 * 4


def test_dask_grid_with_common_random_numbers_matches_serial(four, client):
    points = ipe.montecarlo.iter_points(sigma=[0.0, 0.3], phi=[0.1])
    kw = dict(n_samples=15, seed=9, queries=["fall", "count_fallen"], common_random_numbers=True)
    want = simulate(four, points, **kw)
    got = simulate(four, points, backend="dask", scheduler=client, **kw)
    assert got.equals(want)
    # a different batch size (still >= 100) changes nothing
    again = simulate(four, points, backend="dask", scheduler=client, batch_size=110, **kw)
    assert again.equals(want)


def _finished_tasks(dask_scheduler) -> int:
    """How many ipe rollout tasks have ever finished on this scheduler."""
    tp = dask_scheduler.task_prefixes.get("ipe-rollouts")
    return 0 if tp is None else int(tp.state_counts["memory"])


def test_dask_tasks_are_batched_and_the_cluster_is_left_clean(four, client):
    before = client.run_on_scheduler(_finished_tasks)
    simulate(four, NOISY, n_samples=50, seed=1, backend="dask", scheduler=client)  # 200 rollouts
    assert client.run_on_scheduler(_finished_tasks) - before == 2  # two tasks of 100 rollouts
    before = client.run_on_scheduler(_finished_tasks)
    simulate(four, NOISY, n_samples=50, seed=1, backend="dask", scheduler=client, batch_size=7)
    assert client.run_on_scheduler(_finished_tasks) - before == 2  # batch_size is raised to 100
    # releases reach the scheduler asynchronously after simulate returns: give them a few seconds to land
    deadline = time.monotonic() + 10
    while True:
        left = client.run_on_scheduler(lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks])
        if not [k for k in left if k.startswith("ipe-")] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not [k for k in left if k.startswith("ipe-")]  # every result and the context released


def test_a_bad_scheduler_is_one_line_input_error(four_file, tmp_path):
    assert main(["predict", str(four_file), "--out", str(tmp_path / "a.csv"), "--backend", "process",
                 "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert main(["predict", str(four_file), "--out", str(tmp_path / "a.csv"), "--backend", "nope"]) == 2
    with pytest.raises(InputError, match="only used by the dask backend"):
        simulate(four_file, NOISY, n_samples=1, backend="process", scheduler="tcp://127.0.0.1:9")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(InputError, match="cannot connect to the Dask scheduler"):
            simulate(four_file, NOISY, n_samples=1, backend="dask", scheduler="tcp://127.0.0.1:9")


# --------------------------------------------------------------------------- a worker dies mid-run


def test_killing_a_worker_mid_run_gives_identical_results(demo):
    """SIGKILL one worker process while tasks are running: the run completes with the serial table."""
    stim = ipe.StimulusSet(stimuli=tuple(demo)[:6], name="demo6")
    n, bs = 100, 100  # 6 tasks of 100 rollouts, ~0.3-0.6 s each
    want = simulate(stim, NOISY, n_samples=n, seed=3)

    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster, set_as_default=False)
    try:
        pids_before = client.run(os.getpid)
        box: dict = {}

        def run():
            try:
                box["table"] = simulate(stim, NOISY, n_samples=n, seed=3, backend="dask", scheduler=client,
                                        batch_size=bs)
            except BaseException as exc:  # pragma: no cover - reported below
                box["error"] = exc

        th = threading.Thread(target=run)
        th.start()

        def busy(dask_scheduler):
            return {ws.address: len(ws.processing) for ws in dask_scheduler.workers.values()}

        victim = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and th.is_alive():
            if client.run_on_scheduler(_finished_tasks) >= 2:
                running = [a for a, k in client.run_on_scheduler(busy).items() if k and a in pids_before]
                if running:
                    victim = running[0]
                    break
            time.sleep(0.05)
        assert victim is not None and th.is_alive(), "the run finished before a worker could be killed"
        os.kill(pids_before[victim], signal.SIGKILL)
        th.join(timeout=120)
        assert not th.is_alive()
        assert "error" not in box, box.get("error")
        assert box["table"].equals(want)
        # the nanny replaced the killed worker: a new process id
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids_after = client.run(os.getpid)
            if len(pids_after) == 2:
                break
            time.sleep(0.2)
        assert pids_before[victim] not in set(pids_after.values())
    finally:
        client.close()
        cluster.close()


def test_progress_bar_counts_every_rollout_on_the_cluster(four, client, monkeypatch):
    """One bar for the whole run: it reaches the total whichever worker finished which task."""
    import ipe.montecarlo as mc

    class Bar:
        def __init__(self, total, progress):
            self.total, self.n, self.closed = total, 0, False

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    bars = []
    monkeypatch.setattr(mc, "progress_bar", lambda total, progress: bars.append(Bar(total, progress)) or bars[-1])
    simulate(four, NOISY, n_samples=50, seed=2, backend="dask", scheduler=client)
    assert len(bars) == 1
    assert bars[0].total == 200 and bars[0].n == 200 and bars[0].closed


# --------------------------------------------------------------------------- docs


def test_scale_out_doc_examples_are_valid_python_and_use_real_names():
    import re

    import ipe.montecarlo as mc

    text = (Path(__file__).resolve().parents[1] / "docs" / "scale-out.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 2
    for b in blocks:
        compile(b, "scale-out.md", "exec")
    slurm = next(b for b in blocks if "SLURMCluster" in b)
    assert 'backend="dask", scheduler=client' in slurm and "iter_points" in slurm
    assert mc.DASK_MIN_BATCH == 100 and "DASK_MIN_BATCH" in text
    for opt in ("--backend dask", "--scheduler", "--cache-dir", "ipe cache info", "ipe cache clear --stale",
                "ipe sweep", "--grid sigma=0:0.5:11"):
        assert opt in text


@pytest.mark.slow
def test_bench_dask_quick_runs(tmp_path):
    """``benchmarks/bench_dask.py --quick``: both backends, identical tables, a JSON with the overheads."""
    import json
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "dask.json"
    proc = subprocess.run([sys.executable, str(repo / "benchmarks" / "bench_dask.py"), "--quick", "--out", str(out)],
                          cwd=repo, env=dict(os.environ, IPE_NO_PROGRESS="1"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["identical"] is True and res["cluster_startup_wall_s"] > 0
    assert "overhead_full_sweep_projected" in res
