"""``ipe humans summary`` for a newcomer (issue 24): the ``--column`` hint, ';' files, spreadsheet row numbers,
and one meaning of "noise ceiling" across ``humans summary`` and ``sweep``."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from ipe.cli import main
from ipe.metrics import format_ceiling, split_half_ceiling
from ipe.scenefile import save_stimuli
from ipe.stimuli.towers import generate_towers


def _run(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def towers(tmp_path_factory):
    d = tmp_path_factory.mktemp("nc")
    save_stimuli(generate_towers(4, seed=2, n_blocks=3), d / "t.json")
    return d


def _people(n_participants: int) -> pd.DataFrame:
    rows = []
    for j in range(n_participants):
        for i in range(4):
            rows.append({"participant": f"s{j}", "stimulus_id": f"tower_{i:03d}", "response": (i * 2 + j) % 7 + 1})
    return pd.DataFrame(rows)


def test_missing_column_names_the_mapping_and_rows_are_spreadsheet_rows(towers, capsys):
    p = towers / "subject.csv"
    _people(2).rename(columns={"participant": "subject"}).to_csv(p, index=False)
    rc, _, err = _run(capsys, ["humans", "summary", str(p)])
    assert rc == 2 and len(err.splitlines()) == 1
    assert "missing required column(s) participant" in err and "--column participant=subject" in err
    rc, out, _ = _run(capsys, ["humans", "summary", str(p), "--column", "participant=subject"])
    assert rc == 0 and "8 trials, 2 participants" in out
    bad = _people(2)
    bad["response"] = bad["response"].astype(object)
    bad.loc[3, "response"] = "seven"  # the 4th data row: row 5 of the spreadsheet (row 1 is the header)
    bad.to_csv(p, index=False)
    rc, _, err = _run(capsys, ["humans", "summary", str(p)])
    assert rc == 2 and "row 5: response 'seven' is not a finite number" in err


def test_semicolon_file_reads_through_the_cli(towers, capsys):
    p = towers / "semi.csv"
    _people(3).to_csv(p, index=False, sep=";")
    rc, out, err = _run(capsys, ["humans", "summary", str(p), "--stimuli", str(towers / "t.json")])
    assert rc == 0, err
    assert "12 trials, 3 participants, 4 stimuli" in out


def test_two_participants_get_no_zero_width_interval(towers, capsys):
    p = towers / "two.csv"
    _people(2).to_csv(p, index=False)
    rc, out, _ = _run(capsys, ["humans", "summary", str(p)])
    assert rc == 0
    line = next(x for x in out.splitlines() if x.startswith("noise ceiling"))
    assert "no range: 2 participants split only one way" in line and not re.search(r"\[(\S+), \1\]", line)


def test_summary_and_sweep_print_the_same_noise_ceiling(towers, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("IPE_CACHE_DIR", str(tmp_path / "cache"))
    p = tmp_path / "people.csv"
    people = _people(5)
    people.to_csv(p, index=False)
    expected = format_ceiling(split_half_ceiling(people))
    assert re.fullmatch(r"noise ceiling \(split-half r of the human means\): \S+ \[\S+, \S+\]", expected)
    rc, out, _ = _run(capsys, ["humans", "summary", str(p)])
    assert rc == 0 and expected in out.splitlines()
    assert "not a hard limit" in out  # how to read it, not "no model can beat it"
    rc, out, err = _run(capsys, ["sweep", str(towers / "t.json"), "--grid", "sigma=0.1", "--samples", "2",
                                 "--humans", str(p), "--scale", "rating:1-7", "--no-cache",
                                 "--out", str(tmp_path / "sweep.csv")])
    assert rc == 0, err
    assert expected in out.splitlines()

