"""``python -m ipe.cli``: the same as the ``ipe`` command."""

from .main import run

run()
