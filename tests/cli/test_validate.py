"""``ipe validate``: a good file is OK."""

from __future__ import annotations

from pathlib import Path

from ipe.cli import main

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_towers.json"


def test_validate_prints_ok(four, capsys):
    assert main(["validate", str(four)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "4 stimuli" in out
    assert main(["validate", str(DEMO)]) == 0
    assert "OK, 12 stimuli" in capsys.readouterr().out

