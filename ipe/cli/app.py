"""The ``ipe`` typer application: the root command and its ``--version``.

Every command module of :mod:`ipe.cli` adds its commands (or its group of
commands) to :data:`app`; :mod:`ipe.cli` imports those modules in the order
the commands are listed in ``ipe --help``.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from .. import __version__

app = typer.Typer(
    name="ipe",
    help="The intuitive physics engine: noisy 2D simulations that judge physical scenes like people do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def group(name: str, help: str) -> typer.Typer:
    """A group of subcommands (``ipe NAME ...``) added to :data:`app`."""
    sub = typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(sub, name=name)
    return sub


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _show_version(value: bool) -> None:
    if value:
        print(f"ipe {__version__} (Python {sys.version.split()[0]}, pymunk {_installed('pymunk')}, "
              f"torch {_installed('torch')}, pyro-ppl {_installed('pyro-ppl')})")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True,
                                                help="Print ipe's version (and Python's, pymunk's, torch's) and "
                                                     "exit.")] = False) -> None:
    """The intuitive physics engine: noisy 2D simulations that judge physical scenes like people do."""
