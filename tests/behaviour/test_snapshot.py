"""The behaviour snapshot (``tests/behaviour/snapshot.py``) is deterministic, and its ``--compare`` catches changes.

The snapshot is how a refactor shows it changed nothing (docs/architecture.md, "Changing the code safely"):
run it before and after, and ``--compare`` must report 0 differences. That only means something if two runs
of the same code agree (the slow test: two full runs, ~1-3 min each) and if ``--compare`` reports what differs
(the quick test, on two hand-made manifests).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "snapshot.py"


def snapshot_module():
    spec = importlib.util.spec_from_file_location("behaviour_snapshot", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def write_manifest(folder: Path, files: dict, errors: list, api_errors: list) -> Path:
    folder.mkdir()
    manifest = {"versions": "ipe 0", "seconds": 1.0, "files": files, "errors": errors, "api_errors": api_errors}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_compare_reports_every_difference(tmp_path, capsys):
    compare = snapshot_module().compare
    error = {"argv": ["predict", "--samples", "0"], "rc": 2, "stderr": "Error: --samples must be ..."}
    api = {"snippet": "ipe.Block(width=-1)", "rc": 1, "output": "InputError: width must be > 0, got -1"}
    before = write_manifest(tmp_path / "before", {"predict.csv": "aa", "sweep.csv": "bb"}, [error], [api])
    same = write_manifest(tmp_path / "same", {"predict.csv": "aa", "sweep.csv": "bb"}, [error], [api])
    after = write_manifest(tmp_path / "after", {"predict.csv": "aa", "sweep.csv": "cc"},
                           [{**error, "stderr": "Traceback ..."}], [{**api, "output": "ValueError"}])
    assert compare(before, same) == 0
    assert capsys.readouterr().out.strip().endswith("0 differences")
    assert compare(before, after) == 1
    out = capsys.readouterr().out
    assert "file sweep.csv: bb != cc" in out and "error case predict --samples 0" in out
    assert "API case ipe.Block(width=-1)" in out and out.strip().endswith("3 differences")


@pytest.mark.slow
def test_two_snapshots_of_the_same_code_agree(tmp_path):
    for name in ("one", "two"):
        proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    proc = subprocess.run([sys.executable, str(SCRIPT), "--compare", str(tmp_path / "one"), str(tmp_path / "two")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip().endswith(" 0 differences"), proc.stdout
