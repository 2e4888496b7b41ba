"""Behaviour snapshot: a fixed set of ipe commands whose outputs must not change under a refactor.

Run it on the code before a change and after it, then compare the two
manifests::

    python tests/behaviour/snapshot.py --out /tmp/before      # on the old checkout
    python tests/behaviour/snapshot.py --out /tmp/after       # on the new one
    python tests/behaviour/snapshot.py --compare /tmp/before /tmp/after

It drives the installed ``ipe`` command line only (``python -m ipe.cli``), never
ipe's Python modules, so it runs unchanged across renames of ipe's modules.
What it runs, all with fixed seeds on the bundled ``data/demo_towers.json`` and
a generated tower set:

- ``ipe stimuli towers`` (a stimulus file; checks generation and the JSON writer);
- ``ipe predict`` with perceptual, force and mass noise, and its per-rollout table;
- ``ipe predict --noise ...`` on a Plinko-like ball set (motion noise, landing query);
- ``ipe sweep`` over a 2 × 2 grid with ``--humans``, its scores;
- ``ipe humans synthesize`` (simulated participants) and ``ipe fit`` on them
  (a small emulator, NUTS with a fixed seed): params.json, the posterior draws;
- ``ipe experiment serve`` + ``ipe experiment simulate`` (one participant at a
  time) + ``ipe experiment export``: the response table, with the columns that
  hold wall-clock times or durations blanked (they cannot repeat);
- a list of bad inputs, each with its exit status and its stderr (the CLI's
  error messages must stay the same or get better);
- a list of Python API misuses (stimuli built in Python with bad fields,
  bad arguments), each with the error it raises.

``manifest.json`` holds the SHA-256 of every output file (after blanking) and
the error lines; ``--compare`` prints every difference and exits 1 if any.
Bit-identity holds on one machine at pinned versions (``versions`` in the
manifest): a different torch or numpy may change the fit's last digits.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo_towers.json"
#: Export columns that hold wall-clock times or durations: blanked before hashing.
CLOCK_COLUMNS = re.compile(r"^(time|.*_time|.*_at|rt|rt_ms|.*_ms|started|finished|created|submitted)$")

ENV = dict(os.environ, IPE_NO_PROGRESS="1", PYTHONHASHSEED="0", PYTHONUNBUFFERED="1")


def ipe(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ipe.cli", *map(str, args)], capture_output=True, text=True,
                          env=ENV, cwd=REPO)
    if check and proc.returncode != 0:
        raise SystemExit(f"ipe {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    if check:
        print(f"  {time.monotonic() - t0:6.1f} s  ipe {' '.join(str(a) for a in args[:2])}", flush=True)
    return proc


def plinko_set(path: Path) -> None:
    """Two balls dropped onto a tilted static bar, with a landing query (written as scene JSON v1)."""
    stimuli = []
    for i, x in enumerate((-0.3, 0.25)):
        stimuli.append({
            "id": f"drop{i}",
            "scene": {
                "bodies": [{"id": "ball", "type": "ball", "position": [x, 1.5], "radius": 0.05,
                            "elasticity": 0.3}],
                "statics": [
                    {"id": "ground", "type": "box", "position": [0, -0.05], "width": 4, "height": 0.1},
                    {"id": "bar", "type": "box", "position": [0, 0.7], "width": 0.8, "height": 0.05,
                     "angle": 0.3, "elasticity": 0.3},
                ],
                "simulation": {"horizon": 3.0},
            },
            "query": {"name": "landing_x", "body": "ball", "level": 0.05},
        })
    path.write_text(json.dumps({"schema_version": 1, "name": "drops", "stimuli": stimuli}, indent=1))


def blank_clock_columns(path: Path) -> bytes:
    text = path.read_text()
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return text.encode()
    header = rows[0]
    blank = [i for i, name in enumerate(header) if CLOCK_COLUMNS.match(name)]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for r in rows[1:]:
        w.writerow(["<clock>" if i in blank and i < len(r) else v for i, v in enumerate(r)])
    return out.getvalue().encode()


def run_experiment(stimuli: Path, work: Path) -> Path:
    db = work / "exp.db"
    server = subprocess.Popen([sys.executable, "-m", "ipe.cli", "experiment", "serve", str(stimuli), "--db", str(db),
                               "--port", "0", "--seed", "4", "--task", "will-it-fall"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=ENV, cwd=REPO)
    base = token = None
    try:
        t_end = time.monotonic() + 120
        while time.monotonic() < t_end:
            line = server.stdout.readline()
            if not line:
                raise SystemExit(f"server exited early: {server.stderr.read()[-1500:]}")
            m = re.match(r"participant URL: (http://\S+?)/\?id=", line)
            base = m.group(1) if m else base
            m = re.match(r"admin token: (\S+)", line)
            token = m.group(1) if m else token
            if line.startswith("database:"):
                break
        if not base:
            raise SystemExit("server did not print its URL")
        ipe("experiment", "simulate", base, "--stimuli", stimuli, "--participants", 3, "--concurrent", 1,
            "--seed", 5)
    finally:
        server.terminate()
        server.wait(timeout=60)
    out = work / "export.csv"
    ipe("experiment", "export", db, "--out", out)
    return out


BAD_INPUTS = [
    ["predict", "{work}/missing.json", "--out", "{work}/x.csv"],
    ["predict", "{demo}", "--out", "{work}/x.csv", "--sigma", "-1"],
    ["predict", "{demo}", "--out", "{work}/x.csv", "--sigma", "nan"],
    ["predict", "{demo}", "--out", "{work}/x.csv", "--samples", "0"],
    ["predict", "{demo}", "--out", "{work}/x.csv", "--noise", "bogus=1"],
    ["predict", "{demo}", "--out", "{demo}"],
    ["predict", "{work}/bad_width.json", "--out", "{work}/x.csv"],
    ["predict", "{work}/bad_ref.json", "--out", "{work}/x.csv"],
    ["predict", "{work}/overlap.json", "--out", "{work}/x.csv"],
    ["validate", "{work}/bad_width.json"],
    ["validate", "{work}/bad_query.json"],
    ["sweep", "{demo}", "--out", "{work}/s.csv", "--grid", "sigma=a,b"],
    ["sweep", "{demo}", "--out", "{work}/s.csv", "--grid", "sigma=0.1", "--workers", "0"],
    ["fit", "{work}/missing.csv", "--stimuli", "{demo}", "--out", "{work}/f"],
    ["fit", "{work}/humans.csv", "--stimuli", "{demo}", "--out", "{work}/f", "--draws", "-3"],
    ["fit", "{work}/humans.csv", "--stimuli", "{demo}", "--out", "{work}/f", "--free", "sigma,nope"],
    ["stimuli", "towers", "--n", "0", "--out", "{work}/t.json"],
    ["stimuli", "towers", "--blocks", "x", "--out", "{work}/t.json"],
    ["humans", "synthesize", "{demo}", "--out", "{work}/h.csv", "--sigma", "1.5"],
    ["experiment", "export", "{work}/none.db", "--out", "{work}/o.csv"],
    ["experiment", "export", "{demo}", "--out", "{work}/o.csv"],
]


#: Python API misuse: each snippet runs after ``import ipe`` (top-level names only, so it survives module
#: renames); the InputError it raises, wherever it is raised, is recorded.
API_PREAMBLE = """
import ipe
ground = ipe.StaticBox(id="ground", position=(0.0, -0.05), width=4.0, height=0.1)
def stim(*bodies, query=None, interventions=(), sid="s"):
    scene = ipe.Scene(bodies=tuple(bodies), statics=(ground,))
    return ipe.Stimulus(id=sid, scene=scene, query=query or ipe.Query(name="fall"), interventions=interventions)
def block(bid="a", x=0.0, y=0.1, **kw):
    return ipe.Block(id=bid, position=(x, y), **{"width": 0.2, "height": 0.2, **kw})
"""
BAD_API = [
    "ipe.simulate(stim(block(width=-1.0)), n_samples=2)",
    "ipe.simulate(stim(block(x=float('nan'))), n_samples=2)",
    "ipe.simulate(stim(block(), block()), n_samples=2)",
    "ipe.simulate(stim(block(), block('b', x=0.05)), n_samples=2)",
    "ipe.simulate(stim(block(), query=ipe.Query(name='nope')), n_samples=2)",
    "ipe.simulate(stim(block(), query=ipe.Query(name='body_falls', params={'body': 'zz'})), n_samples=2)",
    "ipe.simulate(stim(block(), interventions=(ipe.Intervention(type='remove', time=0.0, bodies=('zz',)),)), n_samples=2)",
    "ipe.simulate([stim(block()), stim(block())], n_samples=2)",
    "ipe.simulate(stim(block()), n_samples=0)",
    "ipe.simulate(stim(block()), n_samples=True)",
    "ipe.simulate(stim(block()), workers=-1)",
    "ipe.simulate('/no/such/file.json')",
    "ipe.simulate(42)",
    "ipe.IPE(sigma=-1).predict(stim(block()))",
    "ipe.NoiseParams(sigma=float('inf'))",
    "ipe.generate_towers(n=0)",
    "ipe.generate_towers(n=2, n_blocks=True)",
]


def api_errors() -> list[dict]:
    out = []
    for snippet in BAD_API:
        code = API_PREAMBLE + f"""
try:
    {snippet}
    print("no error")
except ipe.InputError as exc:
    print("InputError:", exc)
except Exception as exc:
    print(type(exc).__name__ + ":", exc)
"""
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=REPO)
        out.append({"snippet": snippet, "rc": proc.returncode,
                    "output": (proc.stdout.strip() or proc.stderr.strip()[-400:])})
    return out


def bad_stimulus_files(work: Path) -> None:
    demo = json.loads(DEMO.read_text())
    one = demo["stimuli"][0]

    def write(name, mutate):
        s = json.loads(json.dumps(one))
        mutate(s)
        (work / name).write_text(json.dumps({**{k: v for k, v in demo.items() if k != "stimuli"}, "stimuli": [s]}))

    write("bad_width.json", lambda s: s["scene"]["bodies"][0].update(width=-0.1))
    write("bad_ref.json", lambda s: s.update(interventions=[{"type": "remove", "bodies": ["nobody"], "time": 0.0}]))
    write("bad_query.json", lambda s: s.update(query={"name": "no_such_query"}))

    def overlap(s):
        b0 = s["scene"]["bodies"][0]
        s["scene"]["bodies"].append({**b0, "id": b0["id"] + "_twin"})

    write("overlap.json", overlap)


def snapshot(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    work.mkdir(exist_ok=True)
    files: dict[str, Path] = {}

    t0 = time.monotonic()
    ipe("stimuli", "towers", "--n", 4, "--blocks", 6, "--seed", 11, "--out", work / "towers.json")
    files["stimuli_towers.json"] = work / "towers.json"

    ipe("predict", DEMO, "--out", work / "predict.csv", "--sigma", 0.2, "--phi", 0.2, "--mu", 0.1,
        "--samples", 24, "--seed", 3, "--rollouts", work / "predict_rollouts.csv", "--no-cache")
    files["predict.csv"] = work / "predict.csv"
    files["predict_rollouts.csv"] = work / "predict_rollouts.csv"

    plinko_set(work / "plinko.json")
    ipe("predict", work / "plinko.json", "--out", work / "predict_landing.csv", "--noise", "launch_angle=0.2",
        "--noise", "collision_angle=0.2", "--samples", 30, "--seed", 4, "--no-cache")
    files["predict_landing.csv"] = work / "predict_landing.csv"

    ipe("humans", "synthesize", DEMO, "--out", work / "humans.csv", "--sigma", 0.2, "--phi", 0.2, "--seed", 7,
        "--participants", 3)
    files["humans.csv"] = work / "humans.csv"

    ipe("sweep", work / "towers.json", "--out", work / "sweep.csv", "--grid", "sigma=0,0.3", "--grid", "phi=0,0.3",
        "--samples", 8, "--seed", 5, "--no-cache")
    files["sweep.csv"] = work / "sweep.csv"

    ipe("fit", work / "humans.csv", "--stimuli", DEMO, "--out", work / "fit", "--grid", "sigma=0,0.2,0.4",
        "--grid", "phi=0,0.2,0.4", "--emulator-samples", 8, "--warmup", 40, "--draws", 40, "--chains", 1,
        "--seed", 9, "--no-cache")
    for p in sorted((work / "fit").iterdir()):
        if p.is_file() and p.suffix in {".json", ".csv", ".npz"}:
            files[f"fit/{p.name}"] = p

    files["experiment_export.csv"] = run_experiment(work / "towers.json", work)

    bad_stimulus_files(work)
    errors = []
    for argv in BAD_INPUTS:
        args = [a.format(work=work, demo=DEMO) for a in argv]
        proc = ipe(*args, check=False)
        errors.append({"argv": [a.replace(str(work), "{work}").replace(str(DEMO), "{demo}") for a in args],
                       "rc": proc.returncode,
                       "stderr": proc.stderr.replace(str(work), "{work}").replace(str(DEMO), "{demo}").strip()})

    digests = {}
    for name, path in sorted(files.items()):
        data = blank_clock_columns(path) if name == "experiment_export.csv" else path.read_bytes()
        if name.endswith("params.json") or name.endswith("summary.json") or name.endswith("diagnostics.json"):
            data = _without_timing(data)
        digests[name] = hashlib.sha256(data).hexdigest()
    manifest = {"versions": ipe("--version").stdout.strip(), "seconds": round(time.monotonic() - t0, 1),
                "files": digests, "errors": errors, "api_errors": api_errors()}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _without_timing(data: bytes) -> bytes:
    """A fit's JSON without its wall-clock fields (seconds, timestamps), which cannot repeat."""
    try:
        obj = json.loads(data)
    except ValueError:
        return data

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()
                    if not re.search(r"(seconds|elapsed|_time|time_s|wall|timestamp|created)$", k)}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    return json.dumps(strip(obj), sort_keys=True).encode()


def compare(a: Path, b: Path) -> int:
    ma = json.loads((a / "manifest.json").read_text())
    mb = json.loads((b / "manifest.json").read_text())
    diffs = []
    if ma["versions"] != mb["versions"]:
        print(f"note: versions differ: {ma['versions']!r} vs {mb['versions']!r}")
    for name in sorted(set(ma["files"]) | set(mb["files"])):
        if ma["files"].get(name) != mb["files"].get(name):
            diffs.append(f"file {name}: {ma['files'].get(name)} != {mb['files'].get(name)}")
    ea = {" ".join(e["argv"]): e for e in ma["errors"]}
    eb = {" ".join(e["argv"]): e for e in mb["errors"]}
    for key in ea:
        x, y = ea[key], eb.get(key)
        if y is None:
            diffs.append(f"error case missing after: {key}")
        elif (x["rc"], x["stderr"]) != (y["rc"], y["stderr"]):
            diffs.append(f"error case {key}:\n  before rc {x['rc']}: {x['stderr']}\n  after  rc {y['rc']}: {y['stderr']}")
    pa = {e["snippet"]: e for e in ma.get("api_errors", [])}
    pb = {e["snippet"]: e for e in mb.get("api_errors", [])}
    for key, x in pa.items():
        y = pb.get(key)
        if y is None or (x["rc"], x["output"]) != (y["rc"], y["output"]):
            diffs.append(f"API case {key}:\n  before: {x['output']}\n  after:  {y and y['output']}")
    for d in diffs:
        print(d)
    print(f"{len(ma['files'])} files, {len(ea)} error cases: {len(diffs)} differences")
    return 1 if diffs else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, help="folder for the outputs and manifest.json (created)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"), help="compare two snapshot folders")
    args = ap.parse_args(argv)
    if args.compare:
        return compare(*args.compare)
    if not args.out:
        ap.error("give --out DIR or --compare BEFORE AFTER")
    m = snapshot(args.out)
    print(f"{len(m['files'])} files, {len(m['errors'])} error cases in {m['seconds']} s -> {args.out / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
