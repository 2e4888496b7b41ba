"""Wall time of the documented fits, at any ipe tree (this one, or a checkout of an older commit).

    python benchmarks/bench_fit.py                                   # the four documented fits, this tree
    python benchmarks/bench_fit.py --before 793be95                  # the same at an older commit, then here:
                                                                     # one before/after table (the idle rerun)
    python benchmarks/bench_fit.py --runs mental-jenga               # import + fit + predict (long)
    python benchmarks/bench_fit.py --root /tmp/ipe-before --runs course-lab-fit   # an older checkout

Each run is the command a page documents, on the inputs that page makes:

* ``fit-your-data`` — docs/how-to/fit-your-data.md step 3: ``ipe fit responses.csv --stimuli stimuli.json
  --scale rating:1-7 --out fit --workers 2`` on its 8 answers of 2 participants to 4 demo towers;
* ``course-lab-fit`` / ``course-lab-compare`` — docs/tutorials/course-lab.md steps 6 and 7, on 12 towers
  (``--n 12 --balanced --seed 3``) and 12 participants made with ``ipe humans synthesize`` at σ = φ = 0.2,
  seed 1 (the page's class comes through the browser experiment; the synthetic class has the same size);
* ``first-experiment`` — docs/tutorials/first-experiment.md steps 1–3 (8 towers, 6 participants, a 3 × 3
  emulator of 4 rollouts, NUTS 2 × (40 + 40)) as one Python process;
* ``mental-jenga`` — benchmarks/README.md "Mental Jenga experiment 2": ``ipe datasets import mental-jenga``,
  ``ipe fit --free removal_impulse --emulator-samples 100 --emulator-se 0.2 --workers 2`` and ``ipe predict
  --population --samples 200 --workers 2``, timed together (needs ``../shared/datasets/mental_jenga``; not in
  the default runs: its emulator is up to 33 600 rollouts).

``--before REV`` checks REV out into a temporary git worktree, times the runs there first, then in this tree,
prints one Markdown table (before / after, wall and CPU seconds, load) and removes the worktree: the idle
rerun of benchmarks/README.md "Fitting" in one command.

Every run starts with an empty simulation cache and emulator store (``IPE_CACHE_DIR`` in a fresh temporary
directory), so a stored emulator never shortens it; ``--repeat`` runs each fit a second time on the same
store, which is what a stopped or repeated fit costs. Prints one line per run: wall seconds, CPU seconds
(user + system of the command and its workers: less sensitive than wall time to other work on a shared
machine) and the load average before and after; writes ``benchmarks/results/fit.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = ("fit-your-data", "course-lab-fit", "course-lab-compare", "first-experiment", "mental-jenga")
DEFAULT_RUNS = "fit-your-data,course-lab-fit,course-lab-compare,first-experiment"
MENTAL_JENGA = HERE.parent.parent / "shared" / "datasets" / "mental_jenga"

FIT_YOUR_DATA_PREP = """
import pandas as pd, ipe
from ipe.humans import load_responses, validate_responses, ResponseScale
stimuli = ipe.load_demo()
ipe.save_stimuli(stimuli, "stimuli.json")
pd.DataFrame({"subject": ["s1"] * 4 + ["s2"] * 4,
              "item": ["tower_000", "tower_001", "tower_002", "tower_003"] * 2,
              "answer": [3, 6, 1, 7, 4, 7, 2, 6]}).to_csv("my_export.csv", index=False)
raw = load_responses("my_export.csv", mapping={"participant": "subject", "stimulus_id": "item", "response": "answer"})
validate_responses(raw, stimuli=stimuli, scale=ResponseScale.parse("rating:1-7")).to_csv("responses.csv", index=False)
"""

FIRST_EXPERIMENT = """
import ipe
from ipe.humans import ResponseScale, synthesize
from ipe.inference import Emulator, HierarchicalFit
towers = ipe.generate_towers(8, seed=3, balanced=True)
scale = ResponseScale.parse("rating:1-7")
responses, truth = synthesize(towers, 6, sigma=0.2, phi=0.2, scale=scale, seed=1)
emulator = Emulator(grid={"sigma": [0.0, 0.2, 0.4], "phi": [0.0, 0.2, 0.4]}, n_samples=4, seed=0).fit(towers)
fit = HierarchicalFit(free=("sigma", "phi"), scale=scale, num_warmup=40, num_samples=40, num_chains=2,
                      seed=0).fit(responses, emulator)
print({k: round(v["mean"], 3) for k, v in fit.params_.items()})
"""


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(argv, env, cwd, label, log):
    """Wall and CPU seconds (user + system, the command and its worker processes) of one command."""
    t0, c0 = time.perf_counter(), _cpu()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
    dt, cpu = time.perf_counter() - t0, _cpu() - c0
    log.write(f"### {label}: {' '.join(argv)}\n{proc.stdout}\n{proc.stderr}\n")
    log.flush()
    if proc.returncode != 0:
        raise SystemExit(f"{label}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    return dt, proc.stdout, cpu


def time_tree(root: Path, runs: list[str], repeat: bool, mental_jenga: Path) -> tuple[list[dict], Path]:
    """Time ``runs`` with the ipe of ``root`` (fresh cache and emulator store); the rows and the log's path."""
    py = sys.executable
    results = []
    work = Path(tempfile.mkdtemp(prefix="bench-fit-"))
    env = dict(os.environ, PYTHONPATH=str(root), IPE_NO_PROGRESS="1", IPE_CACHE_DIR=str(work / "cache"))
    ipe = [py, "-m", "ipe.cli"]
    with open(work / "log.txt", "w") as log:
        def timed(label, argv, cwd, repeatable=False, steps=None):
            load0 = os.getloadavg()[0]
            if steps is None:
                dt, out, cpu = _run(argv, env, cwd, label, log)
            else:  # several commands timed as one run
                dt = cpu = 0.0
                for i, step in enumerate(steps):
                    d1, out, c1 = _run(step, env, cwd, f"{label} [{i + 1}/{len(steps)}]", log)
                    dt, cpu = dt + d1, cpu + c1
            row = {"run": label, "seconds": round(dt, 1), "cpu_seconds": round(cpu, 1), "load_before": round(load0, 2),
                   "load_after": round(os.getloadavg()[0], 2)}
            if repeatable and repeat:
                again = _run(argv, env, cwd, label + " (repeat)", log)
                row["repeat_seconds"], row["repeat_cpu_seconds"] = round(again[0], 1), round(again[2], 1)
            results.append(row)
            print(json.dumps({"root": str(root), **row}), flush=True)

        if "fit-your-data" in runs:
            d = work / "fit-your-data"
            d.mkdir()
            _run([py, "-c", FIT_YOUR_DATA_PREP], env, d, "prepare", log)
            timed("fit-your-data", ipe + ["fit", "responses.csv", "--stimuli", "stimuli.json", "--scale",
                                          "rating:1-7", "--out", "fit", "--workers", "2"], d, repeatable=True)
        if "course-lab-fit" in runs or "course-lab-compare" in runs:
            d = work / "course-lab"
            d.mkdir()
            _run(ipe + ["stimuli", "towers", "--n", "12", "--balanced", "--seed", "3", "--out", "towers.json"], env, d,
                 "prepare", log)
            _run(ipe + ["humans", "synthesize", "towers.json", "-p", "12", "--sigma", "0.2", "--phi", "0.2", "--seed",
                        "1", "--out", "responses.csv"], env, d, "prepare", log)
            fit = ipe + ["fit", "responses.csv", "--stimuli", "towers.json", "--scale", "rating:1-7",
                         "--grid", "sigma=0,0.2,0.4", "--grid", "phi=0,0.2,0.4",
                         "--emulator-samples", "4", "--warmup", "50", "--draws", "50", "--out", "fit/"]
            if "course-lab-fit" in runs:
                timed("course-lab-fit", fit, d, repeatable=True)
            else:
                _run(fit, env, d, "prepare", log)
            if "course-lab-compare" in runs:
                timed("course-lab-compare", ipe + ["compare", "responses.csv", "--stimuli", "towers.json", "--fit",
                                                   "fit/", "--folds", "5", "--warmup", "30", "--draws", "30",
                                                   "--out", "comparison.csv"], d)
        if "first-experiment" in runs:
            d = work / "first-experiment"
            d.mkdir()
            timed("first-experiment", [py, "-c", FIRST_EXPERIMENT], d)
        if "mental-jenga" in runs:
            if not mental_jenga.is_dir():
                print(f"mental-jenga: skipped, no dataset at {mental_jenga}", flush=True)
            else:
                d = work / "mental-jenga"
                d.mkdir()
                timed("mental-jenga", None, d, steps=[
                    ipe + ["datasets", "import", "mental-jenga", str(mental_jenga), "--experiment", "2", "--out", "mj2"],
                    ipe + ["fit", "mj2/responses.csv", "--stimuli", "mj2/stimuli.json", "--free", "removal_impulse",
                           "--emulator-samples", "100", "--emulator-se", "0.2", "--out", "mj2/fit", "--workers", "2"],
                    ipe + ["predict", "mj2/stimuli.json", "--params", "mj2/fit/params.json", "--population",
                           "--samples", "200", "--workers", "2", "--out", "mj2/predictions.csv"]])
    return results, work / "log.txt"


def _git_rev(root: Path) -> str:
    proc = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() or "?"


def _table(before: list[dict], after: list[dict], rev_before: str, rev_after: str) -> str:
    """The before/after Markdown table of benchmarks/README.md "Fitting"."""
    def cell(row):
        if row is None:
            return "not run"
        return f"{row['seconds']:.1f} s, {row['cpu_seconds']:.1f} CPU-s (load {row['load_before']:.1f} → {row['load_after']:.1f})"

    lines = [f"| documented run | before ({rev_before}) | after ({rev_after}) |", "|---|---:|---:|"]
    by = {r["run"]: r for r in before}
    for row in after:
        lines.append(f"| {row['run']} | {cell(by.get(row['run']))} | {cell(row)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=str(HERE.parent), help="The ipe tree to time (default: this one).")
    ap.add_argument("--runs", default=DEFAULT_RUNS, help=f"Comma-separated, among {', '.join(RUNS)}; or 'all'.")
    ap.add_argument("--before", metavar="REV", help="Also time git revision REV (a temporary worktree), first.")
    ap.add_argument("--repeat", action="store_true", help="Time each fit again on the same emulator store.")
    ap.add_argument("--mental-jenga", default=str(MENTAL_JENGA), help="The Mental Jenga dataset folder.")
    ap.add_argument("--out", default=str(HERE / "results" / "fit.json"))
    args = ap.parse_args(argv)
    runs = list(RUNS) if args.runs.strip() == "all" else [r.strip() for r in args.runs.split(",") if r.strip()]
    bad = [r for r in runs if r not in RUNS]
    if bad:
        ap.error(f"unknown run {bad[0]!r}")
    root = Path(args.root).resolve()
    out = {"root": str(root)}
    if args.before:
        tmp = Path(tempfile.mkdtemp(prefix="ipe-before-")) / "tree"
        subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tmp), args.before], check=True,
                       capture_output=True)
        try:
            before, log = time_tree(tmp, runs, args.repeat, Path(args.mental_jenga))
        finally:
            subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tmp)], capture_output=True)
            shutil.rmtree(tmp.parent, ignore_errors=True)
        out.update(before=args.before, before_results=before, before_log=str(log))
    results, log = time_tree(root, runs, args.repeat, Path(args.mental_jenga))
    out.update(results=results, log=str(log))
    if args.before:
        out["table"] = _table(out["before_results"], results, args.before, _git_rev(root))
        print(out["table"])
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = path.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(out, indent=1))
    tmp_out.replace(path)
    print(f"log: {log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
