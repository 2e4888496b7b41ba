"""Safe file writing: every write goes to a temporary file that is then renamed.

A crash or a full disk half-way through a write never leaves a truncated
result behind: readers see either the old file or the complete new one.

Also the optional packages behind some file formats (:data:`OPTIONAL`):
:func:`optional_import` imports one, or says in one line which extra of ipe
installs it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import InputError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


STDOUT = "-"  # an output path that means standard output (atomic_write only)


def _target(path: str | os.PathLike) -> Path:
    """The file a write to ``path`` must change: a symlink's target, else ``path`` itself."""
    path = Path(path)
    if path.is_symlink():
        return Path(os.path.realpath(path))
    return path


def _is_special(path: Path) -> bool:
    """A device, FIFO or socket (``/dev/null``, a named pipe): written in place, never replaced."""
    try:
        return path.exists() and not path.is_file() and not path.is_dir()
    except OSError:
        return False


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    For writers that need a file name rather than a file object (e.g.
    ffmpeg). On any error the temporary file is removed and ``path`` is left
    as it was. A symlink is written through (its target is replaced, the link
    stays); a device or FIFO (``/dev/null``) is written in place, since
    replacing it would destroy it. Failures to write are one-line
    :class:`InputError` s that name ``path``.
    """
    shown = Path(path)
    if str(path) == STDOUT:
        raise InputError(f"{shown}: this output cannot go to standard output; give a file name")
    path = _target(path)
    if path.exists() and path.is_dir():
        raise InputError(f"{shown}: is a directory, expected a file path")
    if _is_special(path):
        try:
            yield path
        except OSError as exc:
            raise InputError(f"{shown}: cannot write ({exc.strerror or exc})") from None
        return
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{parent}: cannot create directory ({exc.strerror})") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=parent)
    except OSError as exc:
        raise InputError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); give it what a plain open() would: the old file's mode, or
        # 0666 less the umask
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, InputError):
            raise InputError(f"{shown}: cannot write ({exc.strerror or exc})") from None
        raise


def atomic_write(path: str | os.PathLike, writer: Callable[[Any], None], mode: str = "w") -> Path:
    """Write ``path`` atomically.

    ``writer`` receives an open file object (text mode for ``mode="w"``,
    binary for ``mode="wb"``). The data are flushed and fsynced to a temporary
    file in the same directory, which then replaces ``path`` in one rename.
    ``"-"`` writes to standard output; a device or FIFO is written in place
    and a symlink through to its target (see :func:`atomic_path`).
    """
    kwargs = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
    if str(path) == STDOUT:
        stream = sys.stdout.buffer if "b" in mode else sys.stdout
        writer(stream)
        stream.flush()
        return Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, mode, **kwargs) as fh:
            writer(fh)
            fh.flush()
            if not _is_special(tmp):
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


SEPARATORS = (",", ";", "\t", "|")
"""Field separators :func:`sniff_separator` recognises (comma first: the default)."""


def sniff_separator(path: str | os.PathLike) -> str:
    """The field separator of a CSV file, from its header line: ``,`` unless the header has none and has ``;``,
    a tab or ``|`` (as a spreadsheet in a comma-decimal locale saves CSV). Quoted text is skipped."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            header = fh.readline(65536)
    except OSError:
        return ","
    counts = dict.fromkeys(SEPARATORS, 0)
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    if counts[","]:
        return ","
    best = max(SEPARATORS[1:], key=lambda c: counts[c])
    return best if counts[best] else ","


def read_csv(path: str | os.PathLike, dtype=None, label: str | None = None, what: str = "CSV file"):
    """Read a CSV with pandas, turning every failure into a one-line :class:`InputError`.

    ``label`` names the file in messages (default: the path; a CLI passes
    e.g. ``"--model X=path"``); ``what`` says what was expected when the
    path is a directory. The separator is sniffed from the header line
    (:func:`sniff_separator`: a spreadsheet saved with ``;`` or tabs reads
    as well as one with commas). Messages: ``no such file``, ``is a directory``,
    ``the file is empty``, ``not a readable CSV (…)``.
    """
    import pandas as pd

    path = Path(path)
    label = str(path) if label is None else label
    if not path.exists():
        raise InputError(f"{label}: no such file")
    if path.is_dir():
        raise InputError(f"{label}: is a directory, expected a {what}")
    sep = sniff_separator(path)
    try:
        # a ';' file comes from a spreadsheet in a comma-decimal locale: 4,5 is four and a half
        frame = pd.read_csv(path, dtype=dtype, sep=sep, decimal="," if sep == ";" else ".")
    except pd.errors.EmptyDataError:
        raise InputError(f"{label}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise InputError(f"{label}: not a readable CSV ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]})") from None
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas reads rows with more fields than the header by moving the first ones into the index,
        # which silently shifts every column
        raise InputError(f"{label}: some rows have more fields than the header "
                         f"({len(frame.columns)} columns: {', '.join(map(str, frame.columns))})")
    return frame


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


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
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise InputError(f"{path}: duplicate key {exc.args[0]!r} in a JSON object (which one would count?)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer with thousands of digits
        raise InputError(f"{path}: unreadable JSON ({' '.join(str(exc).split())[:120]})") from None


#: The optional packages (by import name): ``(distribution, extra)``. ``pip install -e .`` leaves them out
#: (together ~0.35 GB); ``pip install "ipe[EXTRA]"`` adds one, ``ipe[all]`` all of them, ``ipe[dev]`` all of them
#: and the test and docs tools. The extras are declared in pyproject.toml (tests/test_install.py checks both agree).
OPTIONAL = {
    "pyarrow": ("pyarrow", "parquet"),          # Parquet tables and the simulation cache
    "imageio_ffmpeg": ("imageio-ffmpeg", "video"),  # MP4 video: render --video, readout, video models
    "pyreadr": ("pyreadr", "mental-jenga"),     # the Mental Jenga data set's .RData files
}


class MissingExtra(InputError):
    """An optional package that a feature needs is not installed (one line that names the extra)."""


def optional_import(module: str, feature: str):
    """Import the optional package ``module`` (a key of :data:`OPTIONAL`) for ``feature``, or raise :class:`MissingExtra`.

    The message: ``{feature} needs {distribution}, which is not installed: pip install "ipe[{extra}]"``.
    """
    dist, extra = OPTIONAL[module]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f'{feature} needs {dist}, which is not installed: pip install "ipe[{extra}]"') from None

