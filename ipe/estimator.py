"""scikit-learn style parameter access shared by ipe's models and fitters.

:class:`ParamsMixin` gives a class whose ``__init__`` only stores its
arguments under the same names (the scikit-learn rule) ``get_params``,
``set_params`` (which returns the object) and a ``repr`` that shows the
arguments that differ from their defaults, so two differently set-up
objects never print the same; and ``check_options``, which checks every
option against the rules a class declares in ``option_rules`` (name →
:class:`ipe.validation.Rule`), as scikit-learn's ``_parameter_constraints``.
"""

from __future__ import annotations

import inspect
from typing import Any

from .errors import InputError


class ParamsMixin:
    """``get_params`` / ``set_params`` / ``repr`` from the ``__init__`` signature; ``check_options``."""

    #: The declared rule of each option (name -> :class:`ipe.validation.Rule`), checked by :meth:`check_options`.
    option_rules: dict = {}

    def check_options(self) -> None:
        """Check every option against its declared rule (:attr:`option_rules`), with the rules' one message."""
        for name, rule in self.option_rules.items():
            rule.check(name, getattr(self, name))

    @classmethod
    def _param_names(cls) -> list[str]:
        return [name for name, p in inspect.signature(cls.__init__).parameters.items()
                if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments by name (``deep`` is accepted for scikit-learn compatibility)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any):
        """Set constructor arguments by name; returns ``self``. Unknown names raise :class:`InputError`."""
        names = self._param_names()
        for name, value in params.items():
            if name not in names:
                raise InputError(f"unknown parameter {name!r} for {type(self).__name__}; expected one of "
                                 f"{', '.join(names)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {name: p.default for name, p in inspect.signature(type(self).__init__).parameters.items()}
        shown = []
        for name, value in self.get_params().items():
            default = defaults.get(name, inspect.Parameter.empty)
            try:
                same = default is not inspect.Parameter.empty and bool(value == default) and \
                    type(value) is type(default)
            except Exception:  # arrays and other values without a plain truth value
                same = False
            if not same:
                shown.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


__all__ = ["ParamsMixin"]
