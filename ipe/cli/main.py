"""Running the ``ipe`` command line: bad input is one line and exit status 2, never a traceback.

:func:`main` runs :data:`ipe.cli.app.app` (with every command module loaded
by :mod:`ipe.cli`) and turns what a command raises into an exit status:
bad input (:class:`~ipe.errors.InputError`, a usage error, an unreadable
file) prints ``ipe: error: …`` on stderr and returns 2; a bug prints one
``ipe: internal error: …`` line and returns 1. ``IPE_DEBUG=1`` shows the
traceback instead.
"""

from __future__ import annotations

import functools
import os
import sys

import click
import typer

from ..errors import InputError
from ..fingerprint import flush_warnings
from .app import app
from .common import check_paths, note

# typer >= 0.20 vendors its own copy of click (typer._click); older typer uses click itself.
try:  # pragma: no cover - depends on the installed typer
    from typer._click.exceptions import ClickException as _VendoredClickException
except ImportError:  # pragma: no cover
    _VendoredClickException = click.ClickException
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (click.exceptions.Abort, typer.Abort)
_USAGE = (click.ClickException, _VendoredClickException)


def _guard_paths(command) -> None:
    """Make every command refuse outputs that would overwrite its inputs (see ``common.check_paths``)."""
    if hasattr(command, "commands"):
        for sub in command.commands.values():
            _guard_paths(sub)
        return
    callback = command.callback
    if callback is None or getattr(callback, "_ipe_guarded", False):
        return
    labels = {p.name: (p.opts[0] if getattr(p, "param_type_name", "") == "option" else p.name.upper())
              for p in command.params}

    @functools.wraps(callback)
    def guarded(*args, **kwargs):
        check_paths(kwargs, labels)
        return callback(*args, **kwargs)

    guarded._ipe_guarded = True
    command.callback = guarded


def _bad_input(exc: BaseException, debug: bool) -> int:
    """One ``ipe: error:`` line for bad input; exit status 2."""
    if isinstance(exc, _USAGE):
        flush_warnings(show=False)
        note(f"ipe: error: {' '.join(exc.format_message().split())}")
        return 2
    if isinstance(exc, InputError):
        flush_warnings(show=False)
        if debug:
            raise exc
        note(f"ipe: error: {exc}")
        return 2
    if debug:  # an OSError: a file that cannot be read or written
        raise exc
    where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
    note(f"ipe: error: {where}{exc.strerror or exc}")
    return 2


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad input)."""
    cmd = typer.main.get_command(app)
    _guard_paths(cmd)
    debug = bool(os.environ.get("IPE_DEBUG"))
    flush_warnings(show=False)  # nothing left over from an earlier call in this process
    try:
        rv = cmd.main(args=argv, prog_name="ipe", standalone_mode=False)
        flush_warnings()  # warnings kept for the end of a command that went through (e.g. no stimulus_set)
        return rv if isinstance(rv, int) else 0
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        note("ipe: aborted")
        return 130
    except (*_USAGE, InputError, OSError) as exc:
        return _bad_input(exc, debug)
    except KeyboardInterrupt:
        note("ipe: interrupted")
        return 130
    except Exception as exc:  # a bug, not bad input: still one line, but exit 1
        if debug:
            raise
        note(f"ipe: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
             "(set IPE_DEBUG=1 for a traceback)")
        return 1


def run() -> None:  # console-script entry point
    sys.exit(main())
