"""Declared input rules: one rule per field, one message template.

Input is checked once, where it enters ipe (a file, a public function, a CLI
option, an HTTP request); the layers under that trust their types. Each field
that enters is given a *rule* here, declared once, in the manner of
scikit-learn's ``utils/_param_validation.py``; every rule is broken with the
same sentence::

    {name} must be {rule}, got {value!r}

for example ``n_samples must be a positive integer, got 0`` or
``sigma must be a finite number >= 0, got -1.0``.

Rules
-----
:data:`POSITIVE_INT`, :data:`NONNEG_INT`, :data:`SEED`, :data:`NONNEG_NUMBER`,
:data:`POSITIVE_NUMBER`, :data:`FRACTION`, :data:`BOOL` and the classes
:class:`Integer`, :class:`Number`, :class:`OneOf`, :class:`Text`,
:class:`Optional`. A rule is a callable object: ``rule.check(name, value)``
returns the value in its canonical type (a plain ``int`` for an integer rule,
a ``float`` for a number rule) or raises :class:`~ipe.errors.InputError`.
``bool`` is never taken for a number (``True`` is not a sample count).

Entry points
------------
:func:`check` checks one value; :func:`validate_params` declares the rules of
a public function's arguments next to its signature and checks them on every
call::

    @validate_params(n_samples=POSITIVE_INT, seed=SEED)
    def simulate(stimuli, n_samples=100, seed=0): ...
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import re
from typing import Any, Callable

import numpy as np

from .errors import InputError

#: The one message every broken rule gives.
TEMPLATE = "{name} must be {rule}, got {value!r}"


def fail(name: str, rule: "Rule | str", value: Any) -> InputError:
    """The :class:`InputError` for ``value`` of ``name`` breaking ``rule`` (returned, for ``raise``)."""
    return InputError(TEMPLATE.format(name=name, rule=rule, value=_shown(value)))


def _shown(value: Any) -> Any:
    """numpy scalars shown as the Python numbers they hold (``0``, not ``np.int64(0)``)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class Rule:
    """One declared constraint on a value; ``str(rule)`` says it in words ("a positive integer")."""

    description = "valid"

    def accepts(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def convert(self, value: Any) -> Any:
        return value

    def check(self, name: str, value: Any) -> Any:
        """``value`` in canonical form, or :class:`InputError` with the one template."""
        if not self.accepts(value):
            raise fail(name, self, value)
        return self.convert(value)

    def __str__(self) -> str:
        return self.description

    def __repr__(self) -> str:
        return f"<rule: {self.description}>"


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def _bound_text(low, high, closed: str) -> str:
    lo_op = ">=" if closed in ("both", "left") else ">"
    hi_op = "<=" if closed in ("both", "right") else "<"
    if low is not None and high is not None:
        left = "[" if closed in ("both", "left") else "("
        right = "]" if closed in ("both", "right") else ")"
        return f"in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{lo_op} {low:g}"
    if high is not None:
        return f"{hi_op} {high:g}"
    return ""


def _within(value: float, low, high, closed: str) -> bool:
    if low is not None and (value < low or (value == low and closed not in ("both", "left"))):
        return False
    if high is not None and (value > high or (value == high and closed not in ("both", "right"))):
        return False
    return True


class Integer(Rule):
    """An ``int`` (not a ``bool``) inside ``[low, high]``; ``description`` overrides the words."""

    def __init__(self, low: int | None = None, high: int | None = None, description: str | None = None):
        self.low, self.high = low, high
        bound = _bound_text(low, high, "both")
        self.description = description or ("an integer" + (f" {bound}" if bound else ""))

    def accepts(self, value: Any) -> bool:
        return _is_int(value) and _within(int(value), self.low, self.high, "both")

    def convert(self, value: Any) -> int:
        return int(value)


class Number(Rule):
    """A real number (not a ``bool``), finite unless ``finite=False``, inside its bounds.

    ``closed`` says which bounds are included: ``"both"``, ``"left"``,
    ``"right"`` or ``"neither"``.
    """

    def __init__(self, low: float | None = None, high: float | None = None, closed: str = "both",
                 finite: bool = True, description: str | None = None):
        if closed not in ("both", "left", "right", "neither"):
            raise ValueError(f"closed must be both, left, right or neither, not {closed!r}")
        self.low, self.high, self.closed, self.finite = low, high, closed, finite
        bound = _bound_text(low, high, closed)
        words = "a finite number" if finite else "a number"
        self.description = description or (words + (f" {bound}" if bound else ""))

    def accepts(self, value: Any) -> bool:
        if not _is_real(value):
            return False
        v = float(value)
        if math.isnan(v) or (self.finite and math.isinf(v)):
            return False
        return _within(v, self.low, self.high, self.closed)

    def convert(self, value: Any) -> float:
        return float(value)


class OneOf(Rule):
    """One of a fixed set of values (compared with ``==``)."""

    def __init__(self, *choices: Any, description: str | None = None):
        self.choices = tuple(choices)
        self.description = description or "one of " + ", ".join(repr(c) for c in self.choices)

    def accepts(self, value: Any) -> bool:
        try:
            return value in self.choices
        except TypeError:  # unhashable or incomparable
            return False


class Text(Rule):
    """A ``str`` matching ``pattern`` in full (``re.fullmatch``: no trailing newline slips through)."""

    def __init__(self, pattern: str | None = None, description: str | None = None):
        self.pattern = re.compile(pattern) if pattern else None
        self.description = description or ("text" if pattern is None else f"text matching {pattern}")

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and (self.pattern is None or self.pattern.fullmatch(value) is not None)


class Boolean(Rule):
    """``True`` or ``False`` (numpy's too); not 0/1."""

    description = "True or False"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, (bool, np.bool_))

    def convert(self, value: Any) -> bool:
        return bool(value)


class Optional(Rule):
    """``None``, or a value that follows ``rule`` (the words say "... or None")."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.description = f"{rule.description} or None"

    def accepts(self, value: Any) -> bool:
        return value is None or self.rule.accepts(value)

    def convert(self, value: Any) -> Any:
        return None if value is None else self.rule.convert(value)


POSITIVE_INT = Integer(1, description="a positive integer")
NONNEG_INT = Integer(0, description="a non-negative integer")
SEED = Integer(0, description="a non-negative integer")
POSITIVE_NUMBER = Number(0.0, closed="neither", description="a finite number > 0")
NONNEG_NUMBER = Number(0.0, description="a finite number >= 0")
FINITE_NUMBER = Number()
FRACTION = Number(0.0, 1.0)
BOOL = Boolean()


def check(name: str, value: Any, rule: Rule) -> Any:
    """Check one value against its declared rule; returns it in canonical form."""
    return rule.check(name, value)


def validate_params(**rules: Rule) -> Callable:
    """Declare the rules of a function's arguments; they are checked on every call.

    Only the named arguments are checked, with their own names in the
    message. The wrapped function receives the canonical values (a plain
    ``int`` for an integer rule, and so on).
    """

    def decorate(func: Callable) -> Callable:
        sig = inspect.signature(func)
        unknown = set(rules) - set(sig.parameters)
        if unknown:
            raise TypeError(f"validate_params: {func.__qualname__} has no argument {', '.join(sorted(unknown))}")

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, rule in rules.items():
                bound.arguments[name] = rule.check(name, bound.arguments[name])
            return func(*bound.args, **bound.kwargs)

        wrapper.__ipe_rules__ = dict(rules)
        return wrapper

    return decorate
SECONDS = Number(0.0, closed="neither", description="a positive number of seconds")
