"""Errors raised for bad user input.

Every error the user can cause (a malformed file, an impossible scene, an
unknown option value) is an :class:`InputError`. Its message is a single line
that names *where* the problem is (file, stimulus, field) and *what* is wrong.
The CLI turns an :class:`InputError` into that one line on stderr and exit
status 2; the Python API simply raises it.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a one-line, user-facing message.

    Parameters
    ----------
    message:
        What is wrong. Newlines are folded so the message stays on one line.
    where:
        Optional location prefix, e.g. ``"stimuli.json: stimulus 'tower_003'"``.
    """

    def __init__(self, message: str, where: str | None = None):
        message = " ".join(str(message).split())
        if where:
            message = f"{where}: {message}"
        super().__init__(message)

    def prefixed(self, where: str) -> "InputError":
        """Return a copy of this error with ``where`` put in front."""
        return InputError(str(self), where)
