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


def test_a_symlink_is_written_through_and_kept(tmp_path):
    target = tmp_path / "real.csv"
    target.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    write_csv(link, pd.DataFrame({"a": [1]}))
    assert link.is_symlink() and target.read_text() == "a\n1\n"


@pytest.mark.skipif(not hasattr(os, "mknod"), reason="needs os.mknod")
def test_a_device_is_written_in_place_not_replaced(tmp_path):
    """`--out /dev/null` must not turn the device into a regular file (a null device made in tmp_path here)."""
    import stat

    dev = tmp_path / "null"
    try:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here (not root)")
    write_csv(dev, pd.DataFrame({"a": [1]}))
    write_json(dev, {"a": 1})
    assert stat.S_ISCHR(os.stat(dev).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_dash_writes_to_standard_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv("-", pd.DataFrame({"a": [1, 2]}))
    assert capsys.readouterr().out == "a\n1\n2\n" and not (tmp_path / "-").exists()


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root can write anywhere")
def test_an_unwritable_place_is_named_in_one_line(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(InputError, match=r"ro/o\.csv: cannot write \(Permission denied\)"):
            write_csv(ro / "o.csv", pd.DataFrame({"a": [1]}))
    finally:
        ro.chmod(0o755)


def test_a_failed_write_is_named_by_its_path_not_the_temporary_file(tmp_path):
    import errno

    def full_disk(fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    from ipe.fileio import atomic_write

    out = tmp_path / "o.csv"
    out.write_text("good\n")
    with pytest.raises(InputError) as exc:
        atomic_write(out, full_disk)
    assert str(exc.value) == f"{out}: cannot write (No space left on device)"
    assert out.read_text() == "good\n" and sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


def test_rows_longer_than_the_header_are_refused_not_shifted(tmp_path):
    """pandas would move the first fields into the index and shift every column by one."""
    p = tmp_path / "r.csv"
    p.write_text("participant,stimulus_id,response\np1,tower_000,1,9\np1,tower_001,2,9\n")
    with pytest.raises(InputError, match="some rows have more fields than the header"):
        read_csv(p)


@pytest.mark.parametrize("text, message", [
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"a": ' + "9" * 5001 + "}", "unreadable JSON"),
])
def test_read_json_refuses_what_json_would_misread_or_crash_on(tmp_path, text, message):
    from ipe.fileio import read_json

    p = tmp_path / "x.json"
    p.write_text(text)
    with pytest.raises(InputError, match=message):
        read_json(p)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_a_spreadsheet_separator_is_sniffed(tmp_path, sep):
    """A CSV saved with ';' (a comma-decimal locale), tabs or '|' reads like one with commas."""
    from ipe.fileio import read_csv, sniff_separator

    p = tmp_path / "r.csv"
    dec = "," if sep == ";" else "."
    p.write_text(sep.join(["participant", "stimulus_id", "response", "note"]) + "\n"
                 + sep.join(["p1", "tower_000", f"4{dec}5", '"a, quoted; text"']) + "\n")
    assert sniff_separator(p) == sep
    df = read_csv(p)
    assert list(df.columns) == ["participant", "stimulus_id", "response", "note"]
    assert df["response"].tolist() == [4.5] and df["note"].tolist() == ["a, quoted; text"]


def test_commas_win_and_quoted_separators_do_not_count(tmp_path):
    from ipe.fileio import sniff_separator

    p = tmp_path / "r.csv"
    p.write_text('"a;b";"c;d"\n1;2\n')
    assert sniff_separator(p) == ";"
    p.write_text('participant,"stimulus;id",response\n')
    assert sniff_separator(p) == ","
