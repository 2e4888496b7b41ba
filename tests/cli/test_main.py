"""The CLI's contract for bad input: one line on stderr, ``ipe: error: …``, exit status 2.

Every malformed-input case below is run in-process through ``ipe.cli.main``
(with ``capsys``); a subset is also run as a real ``python -m ipe.cli``
subprocess, to prove that no traceback ever reaches the terminal. Each error
line must name *where* the problem is: the file, the stimulus id and/or the
field, or the offending option.

Bad stimulus files are made in ``tmp_path`` by loading ``data/demo_towers.json``
and mutating it (trimmed to its first two stimuli to keep the module fast).
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

from ipe.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "data" / "demo_towers.json"
PREFIX = "ipe: error:"


# --------------------------------------------------------------------------- helpers


def _demo_data() -> dict[str, Any]:
    """The demo stimulus set, trimmed to its first two stimuli."""
    data = json.loads(DEMO.read_text(encoding="utf-8"))
    data["stimuli"] = data["stimuli"][:2]
    return data


_BASE = _demo_data()


def base() -> dict[str, Any]:
    return copy.deepcopy(_BASE)


def write(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON; NaN/Infinity come out as Python's literal tokens."""
    path.write_text(json.dumps(data, indent=1, allow_nan=True), encoding="utf-8")
    return path


def stim0(data: dict[str, Any]) -> dict[str, Any]:
    return data["stimuli"][0]


def body(data: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return stim0(data)["scene"]["bodies"][i]


def predict_args(path: Path | str, tmp: Path, *extra: str) -> list[str]:
    return ["predict", str(path), "--samples", "2", "--out", str(tmp / "out.csv"), *extra]


@dataclass(frozen=True)
class Case:
    """A bad-input case: ``build(tmp_path)`` returns the argv and the fragments the error line must contain."""

    id: str
    build: Callable[[Path], tuple[list[str], list[str]]]
    subprocess: bool = False
    ignore_case: tuple[str, ...] = field(default=())


def _file_case(name: str, mutate: Callable[[dict[str, Any]], Any], *fragments: str,
               command: str = "predict", subprocess: bool = False) -> Case:
    """A case that writes a mutated demo file ``<name>.json`` and runs ``command`` on it.

    The error line must contain the file name plus every fragment.
    """

    def build(tmp: Path) -> tuple[list[str], list[str]]:
        data = base()
        out = mutate(data)
        path = write(tmp / f"{name}.json", data if out is None else out)
        if command == "predict":
            argv = predict_args(path, tmp)
        elif command == "render":
            argv = [command, str(path), "--out", str(tmp / "renders")]
        else:
            argv = [command, str(path)]
        return argv, [path.name, *fragments]

    return Case(name, build, subprocess=subprocess)


def _text_case(name: str, text: str, *fragments: str, subprocess: bool = False) -> Case:
    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = tmp / f"{name}.json"
        path.write_text(text, encoding="utf-8")
        return predict_args(path, tmp), [path.name, *fragments]

    return Case(name, build, subprocess=subprocess)


def _good_file_case(name: str, argv: Callable[[Path, Path], list[str]], *fragments: str,
                    subprocess: bool = False) -> Case:
    """A case with a valid stimulus file but a bad command line."""

    def build(tmp: Path) -> tuple[list[str], list[str]]:
        path = write(tmp / "good.json", base())
        return argv(path, tmp), list(fragments)

    return Case(name, build, subprocess=subprocess)


# --------------------------------------------------------------------------- mutations


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        obj: Any = data
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value

    return mutate


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        del data[key]

    return mutate


def _zero_radius_ball(data: dict[str, Any]) -> None:
    b = body(data, 0)
    for k in ("width", "height"):
        b.pop(k)
    b.update(type="ball", radius=0.0)


def _overlap(data: dict[str, Any]) -> None:
    # b1 sits exactly on b0: the same centre and size, so they overlap completely.
    body(data, 1)["position"] = list(body(data, 0)["position"])
    body(data, 1)["width"] = body(data, 0)["width"]
    body(data, 1)["height"] = body(data, 0)["height"]


def _duplicate_body(data: dict[str, Any]) -> None:
    body(data, 1)["id"] = body(data, 0)["id"]


def _intervention(iv: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        stim0(data)["interventions"] = [iv]

    return mutate


def _non_convex_static(data: dict[str, Any]) -> None:
    # A dart (arrow-head) shape far to the side of the tower: not convex.
    stim0(data)["scene"]["statics"].append({
        "id": "dart", "type": "polygon", "position": [2.5, 0.5],
        "vertices": [[0.0, 0.0], [0.4, 0.0], [0.1, 0.1], [0.0, 0.4]],
    })


def _render_out_is_file(path: Path, tmp: Path) -> list[str]:
    f = tmp / "not_a_dir.png"
    f.write_bytes(b"")
    return ["render", str(path), "--out", str(f)]


def _out_is_dir(path: Path, tmp: Path) -> list[str]:
    d = tmp / "existing_dir"
    d.mkdir()
    return ["predict", str(path), "--samples", "2", "--out", str(d)]


def _missing_file(tmp: Path) -> tuple[list[str], list[str]]:
    path = tmp / "does_not_exist.json"
    return predict_args(path, tmp), [path.name]


def _no_args(tmp: Path) -> tuple[list[str], list[str]]:
    return ["predict"], ["stimuli"]


S0 = "tower_000"

CASES: list[Case] = [
    # --- the file itself
    _text_case("truncated_json", DEMO.read_text(encoding="utf-8")[:500], "JSON", subprocess=True),
    _text_case("empty_file", "", "empty"),
    _text_case("whitespace_only", "  \n\t\n", "empty"),
    _file_case("not_an_object", lambda d: [d], "object"),
    Case("missing_file", _missing_file, subprocess=True),
    # --- top level
    _file_case("missing_schema_version", _del("schema_version"), "schema_version"),
    _file_case("wrong_schema_version", _set(["schema_version"], 99), "schema_version", "99"),
    _file_case("empty_stimuli", _set(["stimuli"], []), "empty"),
    _file_case("unknown_top_level_key", _set(["extra_key"], 1), "extra_key"),
    _file_case("duplicate_stimulus_id", _set(["stimuli", 1, "id"], S0), "stimuli[1]", S0, "duplicate"),
    # --- bodies
    _file_case("unknown_body_key", lambda d: body(d).update(colour="#ff0000"), S0, "bodies[0]", "colour"),
    _file_case("nan_position", lambda d: body(d).update(position=[math.nan, 0.15]), S0, "bodies[0]",
               "position", subprocess=True),
    _file_case("infinite_position", lambda d: body(d).update(position=[0.0, math.inf]), S0, "bodies[0]",
               "position"),
    _file_case("negative_width", lambda d: body(d).update(width=-0.1), S0, "bodies[0]", "width"),
    _file_case("zero_radius_ball", _zero_radius_ball, S0, "bodies[0]", "radius"),
    _file_case("bad_colour", lambda d: body(d).update(color="red"), S0, "bodies[0]", "color", "#rrggbb"),
    _file_case("overlapping_blocks", _overlap, S0, "b0", "b1", "overlap", subprocess=True),
    _file_case("duplicate_body_id", _duplicate_body, S0, "bodies[1]", "b0", "duplicate"),
    _file_case("non_convex_static", _non_convex_static, S0, "statics[1]", "vertices", "convex"),
    # --- queries and interventions in the file
    _file_case("unknown_query_name", _set(["stimuli", 0, "query"], {"name": "wobble"}), S0, "query", "wobble"),
    _file_case("query_unknown_body", _set(["stimuli", 0, "query"], {"name": "body_falls", "body": "nope"}),
               S0, "query", "nope"),
    _file_case("intervention_unknown_body", _intervention({"type": "remove", "time": 0.5, "bodies": ["ghost"]}),
               S0, "interventions[0]", "ghost"),
    _file_case("intervention_after_horizon", _intervention({"type": "remove", "time": 5.0, "bodies": ["b9"]}),
               S0, "interventions[0]", "time", "horizon"),
    # --- other commands read the same files the same way
    _file_case("validate_nan_position", lambda d: body(d).update(position=[math.nan, 0.15]), S0, "position",
               command="validate"),
    _file_case("render_negative_width", lambda d: body(d).update(width=-0.1), S0, "width", command="render"),
    # --- the command line
    _good_file_case("samples_zero", lambda p, t: predict_args(p, t, "--samples", "0"), "--samples",
                    subprocess=True),
    _good_file_case("negative_sigma", lambda p, t: predict_args(p, t, "--sigma", "-1"), "sigma"),
    _good_file_case("out_is_directory", _out_is_dir, "--out", "existing_dir", subprocess=True),
    _good_file_case("unknown_cli_query", lambda p, t: predict_args(p, t, "--query", "nope"), "query", "nope",
                    subprocess=True),
    _good_file_case("render_out_is_file", _render_out_is_file, "--out", "not_a_dir.png"),
    _good_file_case("towers_n_zero", lambda p, t: ["stimuli", "towers", "--out", str(t / "t.json"), "--n", "0"],
                    "--n"),
    Case("predict_no_args", _no_args, subprocess=True),
]

SUBPROCESS_CASES = [c for c in CASES if c.subprocess]

assert len({c.id for c in CASES}) == len(CASES)
assert len(CASES) >= 16 and len(SUBPROCESS_CASES) >= 5


def check_error(rc: int, out: str, err: str, fragments: list[str]) -> None:
    """The contract: exit 2, exactly one non-empty ``ipe: error:`` line, naming the location."""
    shown = f"exit status {rc}\n--- stderr ---\n{err}--- stdout ---\n{out}"
    assert "Traceback" not in err and "Traceback" not in out, shown
    assert rc == 2, shown
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr\n{shown}"
    line = lines[0]
    assert line.strip(), shown
    assert line.startswith(PREFIX), shown
    assert line[len(PREFIX):].strip(), shown
    missing = [f for f in fragments if f.lower() not in line.lower()]
    assert not missing, f"error line does not mention {missing}\n{shown}"


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("IPE_DEBUG", raising=False)
    monkeypatch.setenv("IPE_NO_PROGRESS", "1")


def _subprocess_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "IPE_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["IPE_NO_PROGRESS"] = "1"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_subprocess(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ipe.cli", *argv], cwd=cwd, env=_subprocess_env(),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_in_process(case: Case, tmp_path: Path, capsys) -> None:
    argv, fragments = case.build(tmp_path)
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    check_error(rc, cap.out, cap.err, fragments)
    assert not (tmp_path / "out.csv").exists(), "no output may be written for bad input"


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES])
def test_bad_input_subprocess(case: Case, tmp_path: Path) -> None:
    argv, fragments = case.build(tmp_path)
    proc = run_subprocess(argv, tmp_path)
    check_error(proc.returncode, proc.stdout, proc.stderr, fragments)
    assert not (tmp_path / "out.csv").exists(), "no output may be written for bad input"


# --------------------------------------------------------------------------- good input


HEADER = "stimulus_id,query,n_samples,mean,sd,se"


def test_valid_input_in_process(tmp_path: Path, capsys) -> None:
    out = tmp_path / "tmp.csv"
    rc = main(["predict", str(DEMO), "--samples", "2", "--out", str(out)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "Traceback" not in cap.err
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith(HEADER)
    assert len(lines) == 1 + len(json.loads(DEMO.read_text(encoding="utf-8"))["stimuli"])


def test_valid_input_subprocess(tmp_path: Path) -> None:
    proc = run_subprocess(["predict", str(DEMO), "--samples", "2", "--out", "tmp.csv"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    text = (tmp_path / "tmp.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith(HEADER)


def test_validate_ok(tmp_path: Path, capsys) -> None:
    rc = main(["validate", str(DEMO)])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "OK" in cap.out


# --------------------------------------------------------------------------- help


HELP_COMMANDS = [
    [],
    ["stimuli", "towers"],
    ["predict"],
    ["render"],
    ["demo"],
    ["validate"],
]


@pytest.mark.parametrize("command", HELP_COMMANDS, ids=[" ".join(["ipe", *c]) for c in HELP_COMMANDS])
def test_help(command: list[str], capsys) -> None:
    rc = main([*command, "--help"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "Traceback" not in cap.out + cap.err
    assert cap.out.lstrip().startswith(f"Usage: {' '.join(['ipe', *command])}"), cap.out
    assert "--help" in cap.out


def test_help_subprocess(tmp_path: Path) -> None:
    proc = run_subprocess(["predict", "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.lstrip().startswith("Usage: ipe predict"), proc.stdout
    assert "Traceback" not in proc.stderr


def test_an_output_that_would_overwrite_an_input_or_another_output_is_refused(tmp_path, capsys):
    """Every command: --out (and --rollouts, --scores, --figure, --truth, --videos-out) never clobbers a file
    the command reads or another file it writes; nothing is written."""
    stim = tmp_path / "t.json"
    assert main(["stimuli", "towers", "--n", "2", "--seed", "1", "--blocks", "3", "--out", str(stim)]) == 0
    before = stim.read_bytes()
    people = tmp_path / "people.csv"
    assert main(["humans", "synthesize", str(stim), "-p", "2", "--sigma", "0.2", "--phi", "0.2", "--seed", "1",
                 "--out", str(people), "--no-progress"]) == 0
    capsys.readouterr()
    cases = [
        (["predict", str(stim), "-n", "1", "--out", str(stim)], "--out", "STIMULI"),
        (["predict", str(stim), "-n", "1", "--out", str(tmp_path / "x.csv"), "--rollouts", str(tmp_path / "x.csv")],
         "--rollouts", "--out"),
        (["predict", str(stim), "-n", "1", "--out", str(tmp_path / "sub" / ".." / "t.json")], "--out", "STIMULI"),
        (["humans", "synthesize", str(stim), "-p", "2", "--sigma", "0.2", "--phi", "0.2", "--seed", "1",
          "--out", str(tmp_path / "h.csv"), "--truth", str(tmp_path / "h.csv")], "--truth", "--out"),
        (["humans", "summary", str(people), "--stimuli", str(stim), "--out", str(people)], "--out", "RESPONSES"),
        (["sweep", str(stim), "--grid", "sigma=0,0.2", "-n", "1", "--humans", str(people), "--out",
          str(tmp_path / "s.csv"), "--scores", str(people)], "--scores", "--humans"),
    ]
    for argv, what, other in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"ipe: error: {what} ") and f"the same file as {other} " in err, err
        assert err.count("\n") == 1
    assert stim.read_bytes() == before
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "h.csv").exists()
    assert not (tmp_path / "s.csv").exists()


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    """Two 3-block towers, two Plinko worlds and two synthetic participants' answers to the towers."""
    d = tmp_path_factory.mktemp("qa")
    assert main(["stimuli", "towers", "--n", "2", "--seed", "1", "--blocks", "3", "--out", str(d / "t.json")]) == 0
    assert main(["stimuli", "plinko", "--n", "2", "--seed", "1", "--out", str(d / "p.json")]) == 0
    assert main(["humans", "synthesize", str(d / "t.json"), "-p", "2", "--sigma", "0.2", "--phi", "0.2", "--seed",
                 "1", "--out", str(d / "people.csv"), "--no-progress"]) == 0
    return d


LATE_CASES = {
    # refused before the emulator is built (each used to run it first, or to run at all)
    "fit range of a parameter that is not free": (
        lambda d: ["fit", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "fo"),
                   "--range", "mu=0:1"], "'mu' is not a free parameter"),
    "fit range backwards": (
        lambda d: ["fit", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "fo"),
                   "--range", "sigma=1:0"], "expected finite LO < HI"),
    "fit grid of one value": (
        lambda d: ["fit", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "fo"),
                   "--grid", "sigma=0.1"], "at least 2 values"),
    "fit empty emulator file": (
        lambda d: (d / "e0.npz").write_bytes(b"") and None or
        ["fit", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "fo"),
         "--emulator", str(d / "e0.npz")], "not an emulator file written by ipe (empty file)"),
    "fit-landing on towers": (
        lambda d: ["fit-landing", str(d / "people.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "fl")],
        "no landing query and no ball"),
    "plot trajectories with a non-landing query": (
        lambda d: ["plot", "trajectories", str(d / "p.json"), "--samples", "1", "--query", "fall", "--out",
                   str(d / "pt")], "'fall' is not a landing query"),
    "towers asking about a body they do not have": (
        lambda d: ["stimuli", "towers", "--n", "1", "--blocks", "3", "--query", "body_falls:body=b9", "--out",
                   str(d / "s.json")], "unknown body 'b9'"),
    "towers of an impossible height": (
        lambda d: ["stimuli", "towers", "--n", "1", "--blocks", "3", "--same-height", "--height", "1", "--out",
                   str(d / "s.json")], "towers of 3 blocks are 0.1 to 0.9 m tall"),
    "render video at 0 fps": (
        lambda d: ["render", str(d / "t.json"), "--video", "--fps", "0", "--out", str(d / "rv")], "--fps 0"),
    "a malformed scheduler address": (
        lambda d: ["predict", str(d / "t.json"), "-n", "1", "--scheduler", "notaurl", "--out", str(d / "o.csv")],
        "'notaurl' is not a Dask scheduler address"),
    "a model table with text for a mean": (
        lambda d: (d / "m.csv").write_text("stimulus_id,query,mean\ntower_000,fall,abc\n") and
        ["compare", "--stimuli", str(d / "t.json"), "--humans", str(d / "people.csv"), "--no-ipe", "--model",
         f"a={d / 'm.csv'}", "--out", str(d / "cr")], "row 2: mean 'abc' of 'tower_000' is not a number"),
    "serve with a CORS origin that is not one": (
        lambda d: ["experiment", "serve", str(d / "t.json"), "--task", "will-it-fall", "--db", str(d / "x.db"),
                   "--cors-origin", "not a url"], "expected an origin such as"),
    "serve with an empty completion code": (
        lambda d: ["experiment", "serve", str(d / "t.json"), "--task", "will-it-fall", "--db", str(d / "x.db"),
                   "--completion-code", " "], "--completion-code: empty"),
    "a response table whose rows are longer than its header": (
        lambda d: (d / "long.csv").write_text("participant,stimulus_id,response\np1,tower_000,1,9\n") and
        ["humans", "summary", str(d / "long.csv")], "some rows have more fields than the header"),
}


@pytest.mark.parametrize("name", list(LATE_CASES))
def test_more_bad_input_is_one_line_and_nothing_is_left_behind(small_files, name, capsys):
    build, fragment = LATE_CASES[name]
    before = sorted(p.name for p in small_files.iterdir())
    argv = build(small_files)
    capsys.readouterr()
    assert main(argv) == 2, name
    err = capsys.readouterr().err
    assert err.startswith(PREFIX) and fragment in err and err.count("\n") == 1, err
    left = sorted(set(p.name for p in small_files.iterdir()) - set(before) - {"e0.npz", "m.csv", "long.csv"})
    assert left == [], f"{name}: left {left}"


# --------------------------------------------------------------------------- issue 20: inputs never overwritten, huge numbers,
# absurd geometry


def _far_tower(d, x: float):
    data = json.loads((d / "t.json").read_text())
    data["stimuli"][0]["scene"]["bodies"][0]["position"] = [x, x]
    (d / "far.json").write_text(json.dumps(data))
    return d / "far.json"


def _big_csv(d, column: str):
    cols = {"response": "3", "rt": "100", "trial_index": "0", column: "9" * 400}
    (d / "big.csv").write_text("participant,stimulus_id,response,rt,trial_index\n"
                               f"p1,tower_000,{cols['response']},{cols['rt']},{cols['trial_index']}\n")
    return d / "big.csv"


def _videos_dir(d):
    v = d / "vids"
    v.mkdir(exist_ok=True)
    (v / "tower_000.mp4").write_bytes(b"not really a video")
    return v


ISSUE20_CASES = {
    "a body at 1e308": (lambda d: ["predict", str(_far_tower(d, 1e308)), "-n", "1", "--out", str(d / "o.csv")],
                        "must be within -10000..10000"),
    "a body at 2e4 m": (lambda d: ["predict", str(_far_tower(d, 2e4)), "-n", "1", "--out", str(d / "o.csv")],
                        "must be within -10000..10000"),
    "a 400-digit response in a CSV (summary)": (
        lambda d: ["humans", "summary", str(_big_csv(d, "response"))], "response 999999999999… (400 digits) is too"),
    "a 400-digit rt in a CSV (summary)": (
        lambda d: ["humans", "summary", str(_big_csv(d, "rt"))], "rt 999999999999… (400 digits) is too large"),
    "a 400-digit trial index in a CSV (fit)": (
        lambda d: ["fit", str(_big_csv(d, "trial_index")), "--stimuli", str(d / "t.json"), "--out", str(d / "fo")],
        "trial_index 999999999999… (400 digits) is too large"),
    "two ids that differ only by a trailing newline (fit)": (
        lambda d: (d / "merge.csv").write_text('participant,stimulus_id,response,trial_index\nalice,tower_000,3,0\n'
                                               '"alice\n",tower_001,5,1\n') and
        ["fit", str(d / "merge.csv"), "--stimuli", str(d / "t.json"), "--out", str(d / "fo")],
        "participant ids 'alice' and 'alice\\n' differ only by surrounding whitespace"),
    "readout --out onto an input video": (
        lambda d: ["video", "readout", str(_videos_dir(d)), "--stimuli", str(d / "t.json"), "--out",
                   str(d / "vids" / "tower_000.mp4")], "lies inside VIDEOS"),
    "readout --videos-out inside the input folder": (
        lambda d: ["video", "readout", str(_videos_dir(d)), "--stimuli", str(d / "t.json"), "--out",
                   str(d / "j.csv"), "--videos-out", str(d / "vids" / "tower_000.mp4")], "lies inside VIDEOS"),
    "readout --out is the input folder": (
        lambda d: ["video", "readout", str(_videos_dir(d)), "--stimuli", str(d / "t.json"), "--out",
                   str(d / "vids")], "vids"),
    "predict --out onto its stimuli": (
        lambda d: ["predict", str(d / "t.json"), "-n", "1", "--out", str(d / "t.json")], "destroy the input"),
}


@pytest.mark.parametrize("name", list(ISSUE20_CASES))
def test_inputs_are_never_overwritten_and_absurd_numbers_are_one_line(small_files, name, capsys):
    build, fragment = ISSUE20_CASES[name]
    argv = build(small_files)
    before = {p: p.read_bytes() for p in small_files.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(argv) == 2, name
    err = capsys.readouterr().err
    assert err.startswith(PREFIX) and fragment in err and err.count("\n") == 1, err
    assert {p: p.read_bytes() for p in before} == before, f"{name}: an input changed"
