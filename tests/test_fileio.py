"""ipe.fileio: atomic writes and the one CSV reader every command uses."""

from __future__ import annotations

import os

import pandas as pd
import pytest

from ipe.errors import InputError
from ipe.fileio import read_csv, write_csv, write_json


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "x.csv: no such file"),
    (lambda p: p.mkdir(), "x.csv: is a directory, expected a CSV file"),
    (lambda p: p.write_text(""), "x.csv: the file is empty"),
    (lambda p: p.write_bytes(b"a,b\n\xff\xfe,1\n"), "x.csv: not a readable CSV (UnicodeDecodeError"),
    (lambda p: p.write_text('a,b\n"1,2\n'), "x.csv: not a readable CSV (ParserError"),
])
def test_read_csv_turns_every_failure_into_one_line(tmp_path, make, message):
    path = tmp_path / "x.csv"
    make(path)
    with pytest.raises(InputError) as err:
        read_csv(path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_read_csv_label_and_dtype(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("stimulus_id,value\n007,1.5\n")
    table = read_csv(path, dtype={"stimulus_id": str})
    assert table["stimulus_id"].tolist() == ["007"] and table["value"].tolist() == [1.5]
    with pytest.raises(InputError, match=r"^--model X=.*missing.csv: no such file$"):
        read_csv(tmp_path / "missing.csv", label=f"--model X={tmp_path / 'missing.csv'}")


def test_write_csv_round_trips_and_leaves_no_temporary_files(tmp_path):
    frame = pd.DataFrame({"a": [0.1, 1 / 3], "b": ["x", "y"]})
    path = write_csv(tmp_path / "sub" / "t.csv", frame)
    back = read_csv(path)
    assert back["a"].tolist() == frame["a"].tolist()
    write_json(tmp_path / "sub" / "t.json", {"k": 1})
    assert sorted(os.listdir(tmp_path / "sub")) == ["t.csv", "t.json"]


def test_written_files_get_the_mode_a_plain_open_would_give(tmp_path):
    old = os.umask(0o022)
    try:
        new = write_csv(tmp_path / "new.csv", pd.DataFrame({"a": [1]}))
        assert new.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600
        kept = tmp_path / "kept.json"
        kept.write_text("{}")
        kept.chmod(0o640)
        write_json(kept, {"a": 1})
        assert kept.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
