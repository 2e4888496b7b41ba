"""``ipe stimuli towers|plinko``: byte-identical files, the same bytes as the Python API and a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import ipe
from ipe.cli import main

REPO = Path(__file__).resolve().parents[2]


def test_stimuli_towers_is_byte_identical_across_runs(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(a)]) == 0
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    err = capsys.readouterr().err
    assert "wrote 4 stimuli" in err
    st = ipe.load_stimuli(a)
    assert len(st) == 4
    # the CLI writes exactly what the Python API saves
    c = tmp_path / "c.json"
    ipe.save_stimuli(ipe.generate_towers(4, seed=7), c)
    assert c.read_bytes() == a.read_bytes()


def test_stimuli_towers_seed_and_options(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "7", "--out", str(a)]) == 0
    assert main(["stimuli", "towers", "--n", "4", "--seed", "8", "--out", str(b)]) == 0
    assert a.read_bytes() != b.read_bytes()
    m = tmp_path / "m.json"
    assert main(["stimuli", "towers", "--n", "2", "--seed", "1", "--blocks", "4", "--mass-variants",
                 "--out", str(m)]) == 0
    st = ipe.load_stimuli(m)
    assert len(st) == 2 and all(len(s.scene.bodies) == 4 for s in st)
    assert {b.material for b in st[0].scene.bodies} == {"heavy", "light"}
    bal = tmp_path / "bal.json"
    assert main(["stimuli", "towers", "--n", "4", "--seed", "2", "--balanced", "--out", str(bal)]) == 0
    assert sum(s.metadata["stable"] for s in ipe.load_stimuli(bal)) == 2


def test_subprocess_writes_the_same_bytes(tmp_path, four):
    out = tmp_path / "sub.json"
    env = dict(os.environ, IPE_NO_PROGRESS="1")
    proc = subprocess.run([sys.executable, "-m", "ipe.cli", "stimuli", "towers", "--n", "4", "--seed", "7",
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.read_bytes() == four.read_bytes()

