"""The course-lab walkthrough (docs/tutorials/course-lab.md) and ``ipe experiment simulate``.

* By default: every command of the page's ```bash blocks parses (the
  subcommand exists; its options, types and required arguments are those the
  command accepts, checked by click without running it); the page covers
  every step in order and is linked from the nav and the README;
  ``ipe experiment simulate`` posts exactly the synthetic participants'
  answers to a real server and fails cleanly on bad input.
* ``pytest -m slow``: the page's bash blocks run literally, line by line, in
  an empty folder: the server starts as a subprocess (on a free port instead
  of 8000, with the admin token it prints in place of ``ADMIN_TOKEN``), the
  simulated class takes the experiment, then export, fit, predict and
  compare; the fitted model and the comparison figure must exist.
"""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import socket
import subprocess
import sys
import time

import pandas as pd
import pytest
import typer.main
from typer.testing import CliRunner

from docs_helpers import DOCS, blocks

try:  # typer >= 0.2x vendors click
    from typer._click import Context as ClickContext
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - typer on top of click
    from click import Context as ClickContext
    from click.exceptions import ClickException

ROOT = DOCS.parent
PAGE = DOCS / "tutorials" / "course-lab.md"
STEPS = ["ipe stimuli towers", "ipe experiment serve", "ipe experiment simulate", "ipe experiment export",
         "ipe humans summary", "ipe sweep", "ipe fit", "ipe compare"]


def page_commands() -> list[str]:
    """The command lines of the page's bash blocks, in order (comments dropped)."""
    out = []
    for src in blocks(PAGE, "bash"):
        for line in src.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def substitute(line: str, port: int, token: str) -> str:
    """The page's line with its port 8000 and the ADMIN_TOKEN placeholder replaced."""
    line = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("--port 8000", f"--port {port}")
    return line.replace("ADMIN_TOKEN", token)


def parse(argv: list[str]):
    """Parse ``ipe ARGV`` as the command line would, without running the command (raises click errors)."""
    from ipe.cli import app

    cmd = typer.main.get_command(app)
    ctx, name, args = None, "ipe", list(argv)
    while hasattr(cmd, "resolve_command"):  # a group
        ctx = ClickContext(cmd, info_name=name, parent=ctx)
        name, cmd, args = cmd.resolve_command(ctx, args)
    return cmd.make_context(name, args, parent=ctx)


def test_page_covers_the_lab_in_order():
    lines = page_commands()
    firsts = [next(i for i, ln in enumerate(lines) if ln.startswith(step)) for step in STEPS]
    assert firsts == sorted(firsts), lines
    assert lines[0].startswith("pip install")
    assert all(ln.startswith(("ipe ", "pip ")) for ln in lines)
    text = PAGE.read_text(encoding="utf-8")
    assert "admin token" in text.lower() and "comparison.png" in text and "params.json" in text
    assert "tutorials/course-lab.md" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "docs/tutorials/course-lab.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_command_parses():
    lines = page_commands()
    n = 0
    for line in lines:
        argv = shlex.split(substitute(line, 8123, "t" * 32))
        if argv[0] == "pip":
            continue
        try:
            parse(argv[1:])
        except ClickException as exc:
            pytest.fail(f"`{line}` does not parse: {exc.format_message()}")
        n += 1
    assert n >= 8
    # The check can fail: a misspelt option or a bad value is refused.
    with pytest.raises(ClickException):
        parse(["fit", "responses.csv", "--stimuli", "towers.json", "--out", "fit/", "--warmpu", "5"])
    with pytest.raises(ClickException):
        parse(["experiment", "simulate", "http://127.0.0.1:1", "--stimuli", "t.json", "--participants", "x"])


# --------------------------------------------------------------------------- ipe experiment simulate


@pytest.fixture(scope="module")
def small_server(tmp_path_factory):
    import ipe
    from ipe.webexperiment.client import ServerProcess

    d = tmp_path_factory.mktemp("lab")
    ipe.save_stimuli(ipe.generate_towers(6, seed=3, balanced=True), d / "towers.json")
    with ServerProcess(d / "towers.json", d / "lab.db") as srv:
        yield d, srv


def test_simulate_posts_the_synthetic_answers(small_server, monkeypatch):
    import ipe
    from ipe.cli import app
    from ipe.webexperiment import export_responses
    from ipe.humans import ResponseScale, synthesize

    d, srv = small_server
    monkeypatch.chdir(d)
    res = CliRunner().invoke(app, ["experiment", "simulate", srv.base, "--stimuli", "towers.json",
                                   "--participants", "3", "--seed", "4", "--prefix", "a",
                                   "--admin-token", srv.admin_token])
    assert res.exit_code == 0, res.output
    assert "3 participants completed 12 test trials" in res.output
    assert "server: 3 participants, 3 completed, 12 test and 6 practice responses" in res.output
    got = export_responses(d / "lab.db", d / "responses.csv")
    stim = ipe.load_stimuli(d / "towers.json")
    want, _ = synthesize(stim, 3, sigma=0.2, phi=0.2, scale=ResponseScale("rating", 1, 7), seed=4)
    want["participant"] = "a-" + want["participant"]
    test_ids = set(got["stimulus_id"])
    assert len(test_ids) == 4
    want = want[want["stimulus_id"].isin(test_ids)]
    merged = got.merge(want, on=["participant", "stimulus_id"], suffixes=("", "_synth"))
    assert len(merged) == len(got) == 12
    assert (merged["response"] == merged["response_synth"]).all()
    # The server's own trial order, not the synthesizer's.
    assert sorted(got.groupby("participant")["trial_index"].apply(list).iloc[0]) == [0, 1, 2, 3]


def test_simulate_refuses_bad_input(small_server, tmp_path, capsys):
    import ipe
    from ipe.cli import main

    d, srv = small_server
    towers = str(d / "towers.json")

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = main(["experiment", "simulate", *args])
        cap = capsys.readouterr()
        return rc, cap.out + cap.err

    common = ["--stimuli", towers, "--participants", "1"]
    # The same ids again: the server refuses a second session for an id.
    assert run(srv.base, *common, "--prefix", "twice")[0] == 0
    rc, out = run(srv.base, *common, "--prefix", "twice")
    assert rc == 2 and "pick another --prefix" in out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    other = tmp_path / "other.json"
    ipe.save_stimuli(ipe.generate_towers(2, seed=99), other)
    for args, msg in ((["http://127.0.0.1:%d" % closed, *common], "cannot reach"),
                      (["ftp://x", *common], "http://"),
                      ([srv.base, *common, "--prefix", "tok", "--admin-token", "wrong-token-wrong"], "--admin-token"),
                      ([srv.base, *common, "--prefix", "bad id!"], "--prefix"),
                      ([srv.base, "--stimuli", str(other), "--prefix", "o"], "not in --stimuli")):
        rc, out = run(*args)
        assert rc == 2, (args, out)
        assert msg in out and "Traceback" not in out and len(out.strip().splitlines()) <= 2, out


# --------------------------------------------------------------------------- the whole walkthrough


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_walkthrough_runs_literally(tmp_path):
    env = dict(os.environ, IPE_NO_PROGRESS="1", PYTHONUNBUFFERED="1",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    port, token, server = _free_port(), "", None
    times = {}
    try:
        for line in page_commands():
            if line.startswith("pip "):
                continue  # installed already
            t0 = time.monotonic()
            if line.startswith("ipe experiment serve"):
                server = subprocess.Popen(["bash", "-c", "exec " + substitute(line, port, token)], cwd=tmp_path,
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                printed = []
                while True:
                    out = server.stdout.readline()
                    assert out, f"the server stopped: {''.join(printed)}"
                    printed.append(out)
                    m = re.match(r"admin token: (\S+)", out)
                    token = m.group(1) if m else token
                    if out.startswith("database:"):
                        break
                assert f"participant URL: http://127.0.0.1:{port}/?id=PARTICIPANT_ID\n" in printed and token
                assert "2 practice + 10 test trials" in printed[-1]
                times[line[:30]] = time.monotonic() - t0
                continue
            proc = subprocess.run(["bash", "-c", substitute(line, port, token)], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=1800)
            assert proc.returncode == 0, f"`{line}`:\n{proc.stderr[-3000:]}"
            if line.startswith("ipe experiment simulate"):
                assert "server: 12 participants, 12 completed, 120 test and 24 practice responses" in proc.stdout
            times[line[:30]] = time.monotonic() - t0
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print(json.dumps(times, indent=1))
    for f in ("towers.json", "lab.db", "responses.csv", "sweep.csv", "sweep.scores.csv", "sweep.png",
              "fit/params.json", "fit/posterior.png", "fit/ppc.png", "predictions.csv", "comparison.csv",
              "comparison.png"):
        assert (tmp_path / f).is_file() and (tmp_path / f).stat().st_size > 0, f
    assert len(list((tmp_path / "renders").glob("*.png"))) == 12
    assert len(pd.read_csv(tmp_path / "responses.csv")) == 120
    grid = pd.read_csv(tmp_path / "sweep.scores.csv")
    assert len(grid) == 9 and grid["best"].sum() == 1 and sorted(grid["rank"]) == list(range(1, 10))
    params = json.loads((tmp_path / "fit" / "params.json").read_text())
    for name in ("sigma", "phi"):
        assert math.isfinite(params[name]["mean"]) and 0.0 <= params[name]["mean"] <= 0.4, params
    cmp = pd.read_csv(tmp_path / "comparison.csv")
    assert {"IPE (fitted noise)", "no-noise model", "noise ceiling (split-half)"} <= set(cmp["model"])
