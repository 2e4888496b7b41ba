"""Noise options: ``--sigma``, ``--phi``, … and ``--noise NAME=VALUE``, checked with the noise parameters' rule.

Every field of :class:`~ipe.noise.NoiseParams` follows one declared rule,
:data:`NOISE_RULE` (a finite number >= 0). The options are checked with
that rule under the option's own name (``--sigma must be a finite number
>= 0, got -1.0``), so the message says which option to fix; the same rule
guards the Python API.
"""

from __future__ import annotations

from ..errors import InputError
from ..noise import PARAM_RULE as NOISE_RULE, NoiseParams
from ..validation import check


def option_name(name: str) -> str:
    """``launch_angle`` → ``--launch-angle``."""
    return "--" + name.replace("_", "-")


def check_noise(values: dict[str, float], labels: dict[str, str] | None = None) -> dict[str, float]:
    """Check every value with :data:`NOISE_RULE`, named by ``labels[name]`` (default: its option)."""
    labels = labels or {}
    return {name: check(labels.get(name, option_name(name)), v, NOISE_RULE) for name, v in values.items()}


def parse_noise_options(specs: list[str] | None) -> dict[str, float]:
    """``["launch_position=0.2", "collision-angle=0.1"]`` → ``{"launch_position": 0.2, "collision_angle": 0.1}``."""
    names = NoiseParams.names()
    out: dict[str, float] = {}
    for spec in specs or []:
        name, sep, text = spec.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise InputError(f"--noise {spec!r}: expected NAME=VALUE, e.g. launch_position=0.2")
        if name not in names:
            raise InputError(f"--noise {spec!r}: unknown noise parameter {name!r}; expected one of {', '.join(names)}")
        if name in out:
            raise InputError(f"--noise {spec!r}: {name} is given twice")
        try:
            out[name] = float(text)
        except ValueError:
            raise InputError(f"--noise {spec!r}: {text.strip()!r} is not a number") from None
    return out


def noise_point(**values: float) -> NoiseParams:
    """A :class:`~ipe.noise.NoiseParams` of option values, each checked under its option's name first."""
    return NoiseParams(**check_noise(values))
