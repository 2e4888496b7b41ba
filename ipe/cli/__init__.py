"""The ``ipe`` command line.

Every command has ``--help``. Bad input (a malformed file, an impossible
scene, an unknown option value) prints one line, ``ipe: error: …``, on stderr
and exits with status 2; no traceback is shown (set ``IPE_DEBUG=1`` to see
one).

This package only assembles the command line: :mod:`ipe.cli.app` holds the
typer application, each module below adds one command or one group of
commands to it (imported here in the order ``ipe --help`` lists them), and
:mod:`ipe.cli.main` runs it. Options many commands share are declared once:
:mod:`ipe.cli.common` (seed, workers, progress, output paths),
:mod:`ipe.cli.backend` (backend, scheduler, cache), :mod:`ipe.cli.noise`
(noise parameters, checked with their declared rule under the option's
name).
"""

from __future__ import annotations

# commands, in the order of ``ipe --help`` (each group is listed where its module is first imported)
from . import stimuli  # noqa: F401  ipe stimuli towers|plinko
from . import predict  # noqa: F401  ipe predict
from . import render  # noqa: F401  ipe render
from . import validate  # noqa: F401  ipe validate
from . import demo  # noqa: F401  ipe demo
from . import fit  # noqa: F401  ipe fit
from . import compare  # noqa: F401  ipe compare
from . import fit_landing  # noqa: F401  ipe fit-landing
from . import sweep  # noqa: F401  ipe sweep
from . import cache  # noqa: F401  ipe cache info|clear
from . import infer  # noqa: F401  ipe infer mass
from . import humans  # noqa: F401  ipe humans synthesize|summary
from . import datasets  # noqa: F401  ipe datasets import mental-jenga
from . import experiment  # noqa: F401  ipe experiment serve|export|links
from . import experiment_simulate  # noqa: F401  ipe experiment simulate
from . import video  # noqa: F401  ipe video readout|train|generate|physics-iq|prompts|import
from . import plot  # noqa: F401  ipe plot trajectories
from .app import app
from .main import main, run

__all__ = ["app", "main", "run"]
