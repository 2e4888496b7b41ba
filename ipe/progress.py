"""Progress for long steps: a tqdm bar in a terminal, a plain line every few seconds elsewhere.

``progress`` arguments across ipe mean:

* ``None`` — a bar when stderr is a terminal, nothing otherwise (quiet in scripts);
* ``True`` — a bar in a terminal, and a plain status line every
  :data:`PLAIN_INTERVAL` seconds when stderr is not a terminal (a log file, CI,
  a notebook's captured stderr), so a long run is never silent;
* ``False`` — nothing.

``IPE_NO_PROGRESS`` in the environment turns every bar and line off (the test
suite sets it). ``IPE_PROGRESS_INTERVAL`` sets the plain lines' interval in
seconds.
"""

from __future__ import annotations

import math
import os
import sys
import time

#: Seconds between plain status lines when stderr is not a terminal.
PLAIN_INTERVAL = 5.0


def _interval() -> float:
    try:
        v = float(os.environ.get("IPE_PROGRESS_INTERVAL", PLAIN_INTERVAL))
    except ValueError:
        v = PLAIN_INTERVAL
    return v if math.isfinite(v) and v >= 0 else PLAIN_INTERVAL


def format_seconds(s: float) -> str:
    """``75.2`` → ``"1:15"``; ``3725`` → ``"1:02:05"``; NaN or infinity → ``"?"``."""
    if not math.isfinite(s) or s < 0:
        return "?"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class PlainProgress:
    """A tqdm-shaped counter that prints one plain line to stderr every ``interval`` seconds (and at the end)."""

    def __init__(self, total: int, desc: str = "", unit: str = "it", interval: float | None = None, stream=None):
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.postfix = ""
        self.interval = _interval() if interval is None else interval
        self.stream = stream if stream is not None else sys.stderr
        self.start = time.monotonic()
        self._last = self.start
        self.closed = False

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        rate = self.n / elapsed if elapsed > 0 else math.nan
        eta = (self.total - self.n) / rate if rate and rate > 0 else math.nan
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        tail = f", {self.postfix}" if self.postfix else ""
        return (f"{self.desc}: {self.n}/{self.total} {self.unit}{pct}, elapsed {format_seconds(elapsed)}, "
                f"ETA {format_seconds(eta)}{tail}")

    def _emit(self) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self._last >= self.interval:
            self._emit()

    def refresh(self) -> None:
        """tqdm's ``refresh``: print a line now if the interval has passed (a total that grew, say)."""
        if time.monotonic() - self._last >= self.interval:
            self._emit()

    def set_postfix_str(self, s: str, refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str, refresh: bool = True) -> None:
        self.desc = desc

    def reset(self, total: int | None = None) -> None:
        self.n = 0
        if total is not None:
            self.total = int(total)
        self.start = self._last = time.monotonic()

    def close(self) -> None:
        if not self.closed and self.n:
            self._emit()
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def progress_bar(total: int, progress: bool | None, desc: str = "", unit: str = "it"):
    """A tqdm bar, a :class:`PlainProgress`, or a disabled tqdm bar, following ``progress`` (module docstring)."""
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    off = os.environ.get("IPE_NO_PROGRESS") or progress is False or (progress is None and not tty)
    if not off and not tty:
        return PlainProgress(total, desc=desc, unit=unit)
    return tqdm(total=total, unit=unit, desc=desc, disable=bool(off), leave=False, dynamic_ncols=True,
                mininterval=0.2)
