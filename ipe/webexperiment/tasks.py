"""The five response tasks of the browser experiment: their widgets, scales, checks and feedback.

=================  ===============  ============================================  ==========================
task               widget           stored ``response``                           ``ipe fit`` scale
=================  ===============  ============================================  ==========================
``will-it-fall``   7 buttons        integer 1–7 (7 = "definitely falls")          ``rating:1-7``
``how-many``       buttons 0..N     integer count of bodies that will fall        ``count:0-N``
``probability``    slider 0–100     number 0–100 (chance it falls)                ``probability:0-100``
``direction``      left / right     1 = left, 0 = right                           ``count:0-1`` (``falls_left``)
``landing``        click on image   scene x (m) where the body will end up        none (not fitted)
=================  ===============  ============================================  ==========================

N for ``how-many`` is :func:`ipe.humans.n_countable` of the stimulus (the
bodies its query counts). A landing answer must lie inside the stimulus's
image frame (its ``x0..x1``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..humans import ResponseScale, n_countable
from ..queries import evaluate, fallen_mask
from ..scene import Ball, Stimulus

TASK_NAMES = ("will-it-fall", "how-many", "probability", "direction", "landing")


@dataclass(frozen=True)
class Task:
    """One response task: what the page asks and how an answer is checked.

    ``widget`` names the page's input (``rating``, ``count``, ``slider``,
    ``choice``, ``click``); ``prompt`` is the default question.
    """

    name: str
    widget: str
    prompt: str
    low_label: str = ""
    high_label: str = ""

    def bounds(self, stim: Stimulus, frame: tuple[float, float, float, float]) -> tuple[float, float]:
        """The smallest and largest answer allowed for ``stim`` (``frame``: its image x0, x1, y0, y1)."""
        if self.name == "will-it-fall":
            return 1.0, 7.0
        if self.name == "how-many":
            return 0.0, float(max(n_countable(stim), 1))
        if self.name == "probability":
            return 0.0, 100.0
        if self.name == "direction":
            return 0.0, 1.0
        return float(frame[0]), float(frame[1])

    @property
    def integer(self) -> bool:
        """Whether answers are whole numbers."""
        return self.name in ("will-it-fall", "how-many", "direction")

    def parse(self, value, stim: Stimulus, frame) -> float:
        """Turn a posted answer into the stored number, or raise ``ValueError`` saying why it is refused.

        ``direction`` takes ``"left"``/``"right"`` (or 1/0); every other task
        a JSON number (never a boolean, NaN or infinity).
        """
        if self.name == "direction" and isinstance(value, str):
            if value not in ("left", "right"):
                raise ValueError(f"response must be 'left' or 'right', got {value[:40]!r}")
            return 1.0 if value == "left" else 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"response must be a number, got {type(value).__name__}")
        x = float(value)
        if not math.isfinite(x):
            raise ValueError("response must be a finite number")
        if self.integer and x != round(x):
            raise ValueError(f"response must be a whole number for task {self.name}, got {x:g}")
        lo, hi = self.bounds(stim, frame)
        if not lo <= x <= hi:
            raise ValueError(f"response {x:g} is outside {lo:g}..{hi:g} for stimulus {stim.id!r}")
        return x

    def scale(self, stimuli) -> ResponseScale | None:
        """The :class:`~ipe.humans.ResponseScale` of the exported responses (``None`` for ``landing``)."""
        if self.name == "will-it-fall":
            return ResponseScale("rating", 1, 7)
        if self.name == "how-many":
            return ResponseScale("count", 0, max(max(n_countable(s), 1) for s in stimuli))
        if self.name == "probability":
            return ResponseScale("probability", 0, 100)
        if self.name == "direction":
            return ResponseScale("count", 0, 1)
        return None

    def truth(self, stim: Stimulus, result) -> float:
        """The correct answer of a noise-free rollout ``result``, on this task's answer scale.

        will-it-fall: 7 if the stimulus's query says something fell, else 1;
        how-many: the number of fallen bodies; probability: 100 or 0;
        direction: 1 (left) / 0 (right), NaN when nothing fell; landing: the
        x of :func:`landing_body` at the end of the rollout (at rest, or at the horizon).
        """
        if self.name == "landing":
            return float(result.final[landing_index(stim), 0])
        if self.name == "how-many":
            if stim.query.name in ("count_fallen", "off_table"):
                return float(evaluate(stim.query, result, stim))
            return float(fallen_mask(result, stim).sum())
        if self.name == "direction":
            m = fallen_mask(result, stim)
            if not m.any():
                return math.nan
            return 1.0 if float(np.mean(result.final[m, 0] - result.initial[m, 0])) < 0 else 0.0
        fell = _fell(stim, result)
        if self.name == "will-it-fall":
            return 7.0 if fell else 1.0
        return 100.0 if fell else 0.0

    def feedback(self, stim: Stimulus, result) -> str:
        """One sentence telling a practice participant what really happened."""
        if self.name == "landing":
            return f"The {landing_body(stim)} ended up at x = {self.truth(stim, result):.2f} m."
        if self.name == "direction":
            t = self.truth(stim, result)
            if math.isnan(t):
                return "Nothing fell."
            return f"It fell to the {'left' if t == 1.0 else 'right'}."
        if self.name == "how-many":
            n = int(round(self.truth(stim, result)))
            return f"{n} {'body' if n == 1 else 'bodies'} fell." if stim.query.name != "off_table" else \
                f"{n} {'body' if n == 1 else 'bodies'} left the table."
        q = stim.query
        if q.name == "body_falls":
            return f"The {q.params['body']} {'fell' if _fell(stim, result) else 'did not fall'}."
        n_fell = int(fallen_mask(result, stim).sum())
        if n_fell == 0:
            return "Nothing fell: it stayed up."
        return f"It fell: {n_fell} {'body' if n_fell == 1 else 'bodies'} fell."


def _fell(stim: Stimulus, result) -> bool:
    """Whether the stimulus's own question has the answer "yes, it falls"."""
    q = stim.query
    if q.name in ("fall", "count_fallen", "off_table", "body_falls"):
        v = evaluate(q, result, stim)
        return bool(v > 0) if not math.isnan(v) else False
    return bool(fallen_mask(result, stim).any())


def landing_body(stim: Stimulus) -> str:
    """The body a landing question is about: the query's ``body``, else the first ball, else the first body."""
    body = stim.query.params.get("body")
    if isinstance(body, str) and body in stim.scene.body_ids:
        return body
    for b in stim.scene.bodies:
        if isinstance(b, Ball):
            return b.id
    return stim.scene.bodies[0].id


def landing_index(stim: Stimulus) -> int:
    """Index of :func:`landing_body` in the scene's bodies."""
    return stim.scene.body_ids.index(landing_body(stim))


TASKS: dict[str, Task] = {
    "will-it-fall": Task("will-it-fall", "rating", "Will the tower fall?", "definitely not", "definitely"),
    "how-many": Task("how-many", "count", "How many blocks will fall?"),
    "probability": Task("probability", "slider", "How likely is it that it falls?", "0 = surely not",
                        "100 = surely"),
    "direction": Task("direction", "choice", "Which way will it fall?"),
    "landing": Task("landing", "click", "Click where the ball will end up."),
}
"""The tasks by name."""


def get_task(name: str) -> Task:
    """The :class:`Task` called ``name``; an unknown name raises :class:`~ipe.errors.InputError`."""
    try:
        return TASKS[name]
    except KeyError:
        raise InputError(f"--task {name!r}: expected one of {', '.join(TASK_NAMES)}") from None
