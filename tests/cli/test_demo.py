"""``ipe demo``: predictions of the noisy and the no-noise model, and a figure."""

from __future__ import annotations

import csv

from ipe.cli import main


def _header(path) -> list[str]:
    with path.open(newline="", encoding="utf-8") as fh:
        return next(csv.reader(fh))


def test_demo_writes_predictions_and_figure(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--samples", "4", "--out", str(out)]) == 0
    pred, fig = out / "predictions.csv", out / "demo.png"
    assert pred.is_file() and fig.is_file()
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    header = _header(pred)
    assert header[0] == "model"
    for c in ("stimulus_id", "query", "n_samples", "mean", "sd", "se"):
        assert c in header
    rows = list(csv.DictReader(pred.open(newline="", encoding="utf-8")))
    assert len(rows) == 2 * 12
    assert {r["model"] for r in rows} == {"ipe", "no_noise"}
    assert all(r["n_samples"] == "4" for r in rows if r["model"] == "ipe")
    assert all(r["n_samples"] == "1" for r in rows if r["model"] == "no_noise")
    printed = capsys.readouterr().out
    assert "predictions.csv" in printed and "demo.png" in printed

