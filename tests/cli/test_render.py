"""``ipe render``: one PNG per stimulus."""

from __future__ import annotations

import ipe
from ipe.cli import main


def test_render_writes_one_png_per_stimulus(tmp_path, four, capsys):
    out = tmp_path / "png"
    assert main(["render", str(four), "--out", str(out), "--size", "64"]) == 0
    ids = ipe.load_stimuli(four).ids
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(f"{i}.png" for i in ids)
    for p in out.iterdir():
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wrote 4 images" in capsys.readouterr().err

