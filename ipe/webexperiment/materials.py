"""What an experiment shows: its configuration, the stimulus images, trial orders and practice feedback.

:class:`Materials` is built once when the server starts (and again by the
export): it splits the stimulus set into practice and test stimuli, runs one
noise-free rollout of every stimulus, chooses one image frame per stimulus
(all at the same scale, wide enough for every noise-free outcome, so the
frame does not hint at the answer), renders the PNGs with
:func:`ipe.render.draw_scene`, and keeps the practice trials' trajectories
for the feedback animation. Everything is deterministic.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..errors import InputError
from ..fingerprint import stimulus_fingerprint
from ..montecarlo import run_sample
from ..noise import NoiseParams
from ..checks import StimulusSet
from ..scene import Ball, Block, StaticSegment, Stimulus, world_vertices
from ..scenefile import as_stimulus_set, parse_stimulus_set, stimulus_set_to_dict
from ..seeding import stream_rng
from ..validation import BOOL, NONNEG_INT, SEED, Integer, check
from .tasks import Task, _fell, get_task

IMAGE_SIZE = Integer(100, 2000)
"""Rule of ``--image-size``: the pictures' longer side in pixels."""

RECORD_EVERY = 8
"""Physics steps between animation frames (8 × 1/240 s = 30 frames per second by default)."""

PARTICIPANT_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
"""Allowed participant ids: 1–64 letters, digits, ``_``, ``.``, ``-`` (always matched in full: ``fullmatch``)."""

DEFAULT_CONSENT = (
    "This is a short study about how people judge physical scenes. You will see pictures of objects and answer "
    "one question about each. It takes a few minutes. Your answers are stored with the id in your link and no "
    "other personal information. You may stop at any time by closing this page.\n\n"
    "By clicking \"I agree\" you consent to take part.")

DEFAULT_INSTRUCTIONS = {
    "will-it-fall": "Each picture shows a tower of blocks at the moment gravity is switched on. Rate how likely "
                    "the tower is to fall, from 1 (definitely not) to 7 (definitely).",
    "how-many": "Each picture shows blocks at the moment gravity is switched on. Say how many of them will fall.",
    "probability": "Each picture shows objects at the moment gravity is switched on. Move the slider to say how "
                   "likely it is that they fall, from 0 (surely not) to 100 (surely).",
    "direction": "Each picture shows a tower at the moment gravity is switched on. Say which way it will fall.",
    "landing": "Each picture shows a ball at the moment gravity is switched on. Click where the ball will end "
               "up, then press Submit.",
}


@dataclass(frozen=True)
class ExperimentConfig:
    """How an experiment runs.

    ``practice``: how many stimuli of the set are practice trials (with
    feedback), unless ``practice_stimuli`` gives them separately: the first
    ones of the set, except that when they all have the same noise-free
    outcome (all stand, or all fall) and the rest of the set has the other
    one, the last practice slot goes to the first stimulus with the other
    outcome, so that practice shows a scene that stays up and one that
    falls before the test (see :func:`choose_practice`). ``seed`` keys every participant's trial order.
    ``completion_code``: one code for everybody (as Prolific expects);
    by default each participant gets their own code. ``conditions``: the
    labels a link may pick with ``?condition=``. ``early_stop=False``: the
    noise-free rollouts behind the feedback and the pictures run to their
    horizon (stored in the design only when False, so designs made without
    it are unchanged).
    """

    task: str
    practice: int = 2
    seed: int = 0
    title: str = "Physics judgments"
    consent: str = DEFAULT_CONSENT
    instructions: str = ""
    prompt: str = ""
    completion_code: str = ""
    conditions: tuple[str, ...] = ()
    image_size: int = 400
    early_stop: bool = True

    def __post_init__(self):
        get_task(self.task)
        check("--practice", self.practice, NONNEG_INT)
        check("--seed", self.seed, SEED)
        check("--image-size", self.image_size, IMAGE_SIZE)
        check("early_stop", self.early_stop, BOOL)
        for c in self.conditions:
            if not isinstance(c, str) or not PARTICIPANT_RE.fullmatch(c):
                raise InputError(f"--conditions: {c!r} is not a valid label (1-64 letters, digits, _ . -)")
        if len(set(self.conditions)) != len(self.conditions):
            raise InputError("--conditions: a label is given twice")
        if self.completion_code and not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", self.completion_code):
            raise InputError("--completion-code: 1-64 letters, digits, _ or -")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["conditions"] = list(self.conditions)
        if self.early_stop:
            del d["early_stop"]  # the default: a design reads as it did before the option existed
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ExperimentConfig":
        d = dict(d)
        d["conditions"] = tuple(d.get("conditions", ()))
        return cls(**d)


@dataclass
class Materials:
    """A prepared experiment (see the module docstring).

    ``stimuli`` lists practice stimuli first, then test stimuli;
    ``frames[i]`` is ``(x0, x1, y0, y1)`` of image ``i`` (scene metres);
    ``images[i]`` its PNG bytes; ``animations[i]`` (practice only) the
    feedback data the page draws on a canvas.
    """

    config: ExperimentConfig
    task: Task
    stimuli: list[Stimulus]
    n_practice: int
    frames: list[tuple[float, float, float, float]]
    images: list[bytes]
    truths: list[float]
    animations: dict[int, dict] = field(default_factory=dict)
    fingerprint: str = ""
    stimulus_set: str = ""
    """:func:`ipe.fingerprint.stimulus_fingerprint` of the set the experiment was built from (``stimuli``)."""

    @property
    def n_test(self) -> int:
        """Number of test trials."""
        return len(self.stimuli) - self.n_practice

    def index(self, stimulus_id: str, phase: str) -> int | None:
        """Position of ``stimulus_id`` among the stimuli of ``phase`` (``practice``/``test``) in :attr:`stimuli`."""
        idx = self._index.get(stimulus_id)
        if idx is None:
            return None
        if (phase == "practice") != (idx < self.n_practice):
            return None
        return idx

    def __post_init__(self):
        self._index = {s.id: i for i, s in enumerate(self.stimuli)}

    def order(self, participant: str) -> list[int]:
        """The test trials of ``participant`` in their presentation order (indices into :attr:`stimuli`).

        A permutation drawn from the stream ``"trial-order"`` keyed by the participant id:
        the same id always gets the same order.
        """
        perm = stream_rng(self.config.seed, "trial-order", participant).permutation(self.n_test)
        return [self.n_practice + int(k) for k in perm]

    def test_set(self) -> StimulusSet:
        """The test stimuli as a set (what exported responses are checked against)."""
        return StimulusSet(stimuli=tuple(self.stimuli[self.n_practice:]))

    def public_config(self) -> dict:
        """What the page needs to know before a session (nothing about the answers)."""
        c = self.config
        t = self.task
        return {"title": c.title, "task": t.name, "widget": t.widget, "prompt": c.prompt or t.prompt,
                "low_label": t.low_label, "high_label": t.high_label, "consent": c.consent,
                "instructions": c.instructions or DEFAULT_INSTRUCTIONS[t.name], "n_practice": self.n_practice,
                "n_test": self.n_test, "image_size": c.image_size, "conditions": list(c.conditions)}

    def trial_info(self, i: int) -> dict:
        """What the page shows for stimulus ``i``: id, image URL, frame and answer range."""
        s = self.stimuli[i]
        lo, hi = self.task.bounds(s, self.frames[i])
        return {"stimulus_id": s.id, "image": f"/api/images/{i}.png", "frame": list(self.frames[i]),
                "low": lo, "high": hi, "practice": i < self.n_practice,
                "feedback": f"/api/feedback/{i}" if i < self.n_practice else None}


def _extent(stim: Stimulus, states) -> tuple[float, float, float, float]:
    xs, ys = [], []
    for b, (x, y, a) in zip(stim.scene.bodies, states):
        if isinstance(b, Ball):
            xs += [x - b.radius, x + b.radius]
            ys += [y - b.radius, y + b.radius]
        else:
            pts = world_vertices(replace(b, position=(float(x), float(y)), angle=float(a)))
            xs += [p[0] for p in pts]
            ys += [p[1] for p in pts]
    return min(xs), max(xs), min(ys), max(ys)


def image_pixels(frame, size: int) -> tuple[int, int]:
    """Width and height (px) of a picture of ``frame``: ``size`` wide, the frame's aspect ratio."""
    x0, x1, y0, y1 = frame
    return size, max(1, int(round(size * (y1 - y0) / (x1 - x0))))


def _render_png(stim: Stimulus, frame, size: int) -> bytes:
    import matplotlib.pyplot as plt

    from ..render import draw_scene  # ipe.render loads matplotlib: only when pictures are drawn

    dpi = 100
    w, h = image_pixels(frame, size)
    fig = plt.figure(figsize=(w / dpi, h / dpi), dpi=dpi)
    try:
        ax = fig.add_axes((0, 0, 1, 1))
        fig.patch.set_facecolor("white")
        draw_scene(ax, stim.scene, bounds=frame)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _animation(stim: Stimulus, result, task: Task) -> dict:
    from ..render import STATIC_COLOR, body_colors  # ipe.render loads matplotlib: only when pictures are drawn

    colors = body_colors(stim.scene)
    bodies = []
    removed_at = {}
    for iv in stim.interventions:
        if iv.type == "remove":
            for b in iv.bodies:
                removed_at[b] = min(removed_at.get(b, math.inf), iv.time)
    for b in stim.scene.bodies:
        d = {"id": b.id, "color": colors[b.id], "removed_at": removed_at.get(b.id)}
        if isinstance(b, Block):
            d.update(kind="block", w=b.width, h=b.height)
        else:
            d.update(kind="ball", r=b.radius)
        bodies.append(d)
    statics = []
    for s in stim.scene.statics:
        if isinstance(s, StaticSegment):
            statics.append({"kind": "segment", "a": list(s.a), "b": list(s.b), "r": s.radius,
                            "color": s.color or STATIC_COLOR})
        else:
            statics.append({"kind": "poly", "pts": [list(p) for p in world_vertices(s)],
                            "color": s.color or STATIC_COLOR})
    traj = np.round(result.trajectory, 5).tolist()
    truth = task.truth(stim, result)
    # NaN (a direction question where nothing fell) is not JSON: the page's feedback request would fail with 500
    return {"bodies": bodies, "statics": statics, "frames": traj,
            "times": [round(float(t), 5) for t in result.times], "feedback": task.feedback(stim, result),
            "truth": truth if math.isfinite(truth) else None}


def choose_practice(outcomes: list[bool | None], n: int) -> list[int]:
    """Indices of the ``n`` practice stimuli among stimuli whose noise-free outcomes (fell?) are ``outcomes``.

    The first ``n``; but when ``n >= 2``, they all share one outcome and a
    later stimulus has the other, the last of them is replaced by the first
    such stimulus. ``None`` (no fall/stand outcome, e.g. landing) never counts.
    """
    chosen = list(range(n))
    if n < 2:
        return chosen
    head = {outcomes[i] for i in chosen}
    if len(head) != 1 or None in head:
        return chosen
    other = next((i for i in range(n, len(outcomes)) if outcomes[i] is not None and outcomes[i] not in head), None)
    if other is not None:
        chosen[-1] = other
    return chosen


def _outcome(task: Task, stim: Stimulus, result) -> bool | None:
    return None if task.name == "landing" else _fell(stim, result)


def build_materials(stimuli, config: ExperimentConfig, practice_stimuli=None, mix_practice: bool = True) -> Materials:
    """Prepare an experiment: split practice/test, roll out, frame and render every stimulus.

    ``practice_stimuli`` (a set or a path) gives the practice trials separately;
    otherwise ``config.practice`` stimuli of ``stimuli`` are practice: the
    first ones, mixed by :func:`choose_practice` to show both outcomes
    (``mix_practice=False``: just the first ones, as a stored design has them).
    At least one test stimulus must remain.
    """
    stimuli = list(as_stimulus_set(stimuli))
    set_fingerprint = stimulus_fingerprint(stimuli)
    task = get_task(config.task)
    ordered, config = _trials(stimuli, config, practice_stimuli)
    _check_trials(ordered, task)
    results = [run_sample(s, NoiseParams(), 0, 0, [s.query], early_stop=config.early_stop,
                          record_every=RECORD_EVERY)[1] for s in ordered]
    if practice_stimuli is None:
        n = config.practice
        pick = choose_practice([_outcome(task, s, r) for s, r in zip(ordered, results)], n) if mix_practice \
            else list(range(n))
        rest = [i for i in range(len(ordered)) if i not in set(pick)]
        ordered = [ordered[i] for i in pick + rest]
        results = [results[i] for i in pick + rest]
    n_practice = config.practice
    frames = _picture_frames(task, ordered, results)
    images = [_render_png(s, f, config.image_size) for s, f in zip(ordered, frames)]
    truths = [task.truth(s, r) for s, r in zip(ordered, results)]
    animations = {i: _animation(ordered[i], results[i], task) for i in range(n_practice)}
    m = Materials(config=config, task=task, stimuli=ordered, n_practice=n_practice, frames=frames,
                  images=images, truths=truths, animations=animations, stimulus_set=set_fingerprint)
    m.fingerprint = hashlib.sha256(design_json(m).encode()).hexdigest()[:16]
    return m


def _trials(stimuli: list[Stimulus], config: ExperimentConfig, practice_stimuli) -> tuple[list[Stimulus],
                                                                                          ExperimentConfig]:
    """Practice then test stimuli (practice given apart, or the first ``config.practice``), and the config
    with the practice count that results."""
    if practice_stimuli is not None:
        ordered = list(as_stimulus_set(practice_stimuli)) + stimuli
        return ordered, replace(config, practice=len(ordered) - len(stimuli))
    if config.practice >= len(stimuli):
        raise InputError(f"--practice {config.practice}: the set has only {len(stimuli)} stimuli; at least one "
                         "must remain for the test trials")
    return stimuli, replace(config, practice=config.practice)


def _check_trials(ordered: list[Stimulus], task: Task) -> None:
    """Each stimulus once; for the landing task, each has a ball (or its query names the body)."""
    ids = [s.id for s in ordered]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputError(f"stimulus id {dup!r} is both a practice and a test stimulus")
    if task.name == "landing":
        for s in ordered:
            has_ball = any(isinstance(b, Ball) for b in s.scene.bodies)
            if not has_ball and not isinstance(s.query.params.get("body"), str):
                raise InputError(f"stimulus {s.id!r}: the landing task asks where the ball ends up, and this "
                                 "scene has no ball (and its query names no body)")


def _picture_frames(task: Task, ordered: list[Stimulus], results: list) -> list[tuple[float, float, float, float]]:
    """The world window ``(x0, x1, y0, y1)`` of every trial's picture: one size for all, each centred on its
    scene."""
    extents = []
    for s, res in zip(ordered, results):
        # Landing answers must fit in the frame: it spans the noise-free outcome too. Other tasks frame
        # the initial scene (the feedback animation may leave the picture).
        pick = [res.initial, res.final] + list(res.trajectory[::3]) if task.name == "landing" else [res.initial]
        ex = np.array([_extent(s, st) for st in pick])
        init = _extent(s, res.initial)
        cx = (init[0] + init[1]) / 2
        half = max(cx - ex[:, 0].min(), ex[:, 1].max() - cx)
        bottom = min(0.0, float(ex[:, 2].min()))
        extents.append((cx, half, bottom, float(ex[:, 3].max()) - bottom))
    if task.name == "landing":
        # Wide pictures: the width holds every noise-free outcome; at least half as tall as wide.
        width = max(2 * h for _, h, _, _ in extents) * 1.12
        height = max(max(hh for _, _, _, hh in extents) * 1.12, 0.5 * width)
        pad = 0.04
    else:
        width = height = max(max(2 * h, hh) for _, h, _, hh in extents) * 1.4
        pad = 0.1
    frames = []
    for cx, _h, bottom, _height in extents:
        y0 = bottom - pad * height
        frames.append(tuple(round(float(v), 6) for v in (cx - width / 2, cx + width / 2, y0, y0 + height)))
    return frames


def design_json(materials: Materials) -> str:
    """The experiment's definition as JSON (config, stimuli in order, practice count), stored in the database."""
    return json.dumps({"config": materials.config.to_dict(),
                       "stimuli": stimulus_set_to_dict(StimulusSet(stimuli=tuple(materials.stimuli))),
                       "n_practice": materials.n_practice}, sort_keys=True)


def materials_from_design(text: str) -> Materials:
    """Rebuild :class:`Materials` from :func:`design_json` (what the export uses)."""
    d = json.loads(text)
    cfg = ExperimentConfig.from_dict(d["config"])
    allst = list(parse_stimulus_set(d["stimuli"], source="the database's stimuli", check_overlap=False))
    n = int(d["n_practice"])
    return build_materials(allst, replace(cfg, practice=n), mix_practice=False)
