"""``python -m ipe.cli``: the same as the ``ipe`` command."""

from . import run

run()
