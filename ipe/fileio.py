"""Safe file writing: every write goes to a temporary file that is then renamed.

A crash or a full disk half-way through a write never leaves a truncated
result behind: readers see either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    For writers that need a file name rather than a file object (e.g.
    ffmpeg). On any error the temporary file is removed and ``path`` is left
    as it was.
    """
    path = Path(path)
    if path.exists() and path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file path")
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{parent}: cannot create directory ({exc.strerror})") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it what a plain open() would: the old file's mode, or
        # 0666 less the umask
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[Any], None], mode: str = "w") -> Path:
    """Write ``path`` atomically.

    ``writer`` receives an open file object (text mode for ``mode="w"``,
    binary for ``mode="wb"``). The data are flushed and fsynced to a temporary
    file in the same directory, which then replaces ``path`` in one rename.
    """
    kwargs = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda fh: fh.write(text))


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Atomically write ``data`` as indented JSON with a trailing newline."""
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return write_text(path, text)


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Atomically write a pandas DataFrame as CSV (no index, ``\\n`` line ends).

    Floats are written with ``repr`` precision so a CSV round-trips exactly and
    two runs with the same inputs give byte-identical files.
    """
    return atomic_write(path, lambda fh: frame.to_csv(fh, index=False, lineterminator="\n"))


def read_csv(path: str | os.PathLike, dtype=None, label: str | None = None, what: str = "CSV file"):
    """Read a CSV with pandas, turning every failure into a one-line :class:`InputError`.

    ``label`` names the file in messages (default: the path; a CLI passes
    e.g. ``"--model X=path"``); ``what`` says what was expected when the
    path is a directory. Messages: ``no such file``, ``is a directory``,
    ``the file is empty``, ``not a readable CSV (…)``.
    """
    import pandas as pd

    path = Path(path)
    label = str(path) if label is None else label
    if not path.exists():
        raise InputError(f"{label}: no such file")
    if path.is_dir():
        raise InputError(f"{label}: is a directory, expected a {what}")
    try:
        return pd.read_csv(path, dtype=dtype)
    except pd.errors.EmptyDataError:
        raise InputError(f"{label}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(f"{label}: not a readable CSV ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})") from None


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, turning every failure into a one-line :class:`InputError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a JSON file") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    if not text.strip():
        raise InputError(f"{path}: file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
