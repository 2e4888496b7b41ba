"""Import Mental Jenga (Zhou, Smith, Tenenbaum & Gerstenberg 2023) into ipe's stimulus and response formats.

Reads the layout of a clone of ``cicl-stanford/mental_jenga`` (or the subset
in ``../shared/datasets/mental_jenga``)::

    data/exp{1,2,3}/{T}.json        towers: 20 bricks {name, x, y, angle}; (-5, -5) = absent
    data/exp3_key.json              experiment 3: removed brick ``a``, asked-about brick ``b``
    code/R/data/exp2_prediction.RData, exp2_participants.RData   responses, exclusions
    code/R/data/exp{1,2}_info.RData the authors' per-brick ``fall`` labels

**Conversion from Box2D** (facts from the upstream code, which runs
box2dweb 2.1a; checked against that engine itself, which reproduces the
authors' ``fall`` labels exactly; see ``docs/mental-jenga.md``):

* coordinates: Box2D's y points down in a 8 × 6 m world, so
  ``y_ipe = 6 − y_box2d`` and ``angle_ipe = −angle_box2d``; gravity 10 m/s²;
* bricks 0.8 × 0.4 m, density 10; statics: ground 8 × 0.2 at (4, 5.9)
  (friction 1, restitution 0), table legs 0.2 × 0.8 at (3, 5.4) and
  (5, 5.4), table top 3 × 0.2 at (4, 4.92) (Box2D coordinates; legs and top
  share the table's friction), so the table surface is at y_ipe = 1.18;
* skin: every box2dweb polygon collides as its box grown by a 0.005 m
  rounded margin (its ``m_radius`` is ``b2_linearSlop``; Box2D C++ uses
  ``b2_polygonRadius`` = 0.01), so settled bricks rest about 5 mm apart;
  ``skin = 0.005`` on bricks and static boxes (mass, sizes, σ and rendering
  stay those of the 0.8 × 0.4 box, as in Box2D);
* friction: Box2D mixes ``sqrt(f1·f2)``, pymunk multiplies, so every shape
  gets ``sqrt(f)``: bricks 0.6 → 0.7746; the table 0.6, or 1.0 in
  experiment 1; the ground 1.0;
* restitution: Box2D uses ``max(r1, r2)`` = 0.2 here, but only for approach
  speeds above 1 m/s (``b2_velocityThreshold``); pymunk multiplies and has no
  threshold, so ``sqrt(0.2)`` per shape would make every slow contact in a
  settling tower bounce. Elasticity is 0 (an approximation: Box2D's
  bounces of fast impacts are lost; in general, ``max`` mixing cannot be
  written as a per-shape pymunk product unless all values are equal);
* damping: box2dweb 2.1a scales linear velocity by ``1 − h·c`` every
  1/60 s step (``c = linearDamping = 1``; Box2D ≥ 2.2 uses ``1/(1 + h·c)``)
  and leaves angular velocity alone: ``damping = (1 − 1/60)^60 = 0.3648``
  of the linear velocity kept per second, ``angular_damping = 1``;
* time: 1/60 s frames, 2 substeps, 15 solver iterations (Box2D's velocity
  iterations), ``collision_slop`` 0.005 m (Box2D's linear slop); the scene
  settles for 50 frames, then the removal, then 700 frames: a 12.5 s horizon.
  Early stopping ends most rollouts long before that; its ``rest_window``
  is 0.25 s, because a tower that only starts to tip after the removal moves
  less than the rest tolerance in ipe's default window of 1/15 s;
* "fell": box2dweb destroys a brick as soon as its centre is below
  y_box2d = 5 (y_ipe = 1), so fallen bricks never pile up on the ground:
  ``remove_below = 1`` does the same, and the query counts bricks whose
  centre ended below ``level = 1``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..fileio import optional_import, write_csv, write_json
from ..humans import validate_responses
from ..noise import apply_noise
from ..checks import StimulusSet, check_stimulus
from ..scene import Block, Intervention, Query, Scene, Simulation, StaticBox, Stimulus
from ..scenefile import save_stimuli
from ..seeding import sample_seed
from ..rollout import rollout

WORLD_HEIGHT = 6.0
BRICK_W, BRICK_H, BRICK_DENSITY = 0.8, 0.4, 10.0
BRICK_FRICTION, TABLE_FRICTION, TABLE_FRICTION_EXP1, GROUND_FRICTION = 0.6, 0.6, 1.0, 1.0
SKIN = 0.005  # box2dweb 2.1a: every polygon's m_radius is b2_linearSlop
FALL_LEVEL = WORLD_HEIGHT - 5.0
SETTLE_FRAMES, RUN_FRAMES, FPS = 50, 700, 60
LINEAR_DAMPING = 1.0  # Box2D's bodyDef.linearDamping on every body
DAMPING_PER_SECOND = (1.0 - LINEAR_DAMPING / FPS) ** FPS  # box2dweb 2.1a: v *= 1 - h·c per step
SUBSTEPS, ITERATIONS, SLOP = 2, 15, 0.005
REST_WINDOW = 0.25  # s; ipe's default 1/15 s can stop a rollout before a tower has begun to tip after the removal
BRICK_COLOR, REMOVED_COLOR, ASKED_COLOR = "#c8a165", "#1a1a1a", "#d04040"
N_TRIALS = 42


def default_root() -> Path:
    """``$IPE_MENTAL_JENGA`` or ``../shared/datasets/mental_jenga`` next to the repository."""
    env = os.environ.get("IPE_MENTAL_JENGA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "datasets" / "mental_jenga"


def _friction(f: float) -> float:
    return math.sqrt(f)


def _statics(experiment: int) -> tuple[StaticBox, ...]:
    table_f = TABLE_FRICTION_EXP1 if experiment == 1 else TABLE_FRICTION

    def box(sid, w, h, x, y, f, color):
        return StaticBox(id=sid, position=(x, WORLD_HEIGHT - y), width=w, height=h, friction=_friction(f),
                         elasticity=0.0, skin=SKIN, color=color)

    return (box("ground", 8.0, 0.2, 4.0, 5.9, GROUND_FRICTION, "#808080"),
            box("leg_left", 0.2, 0.8, 3.0, 5.4, table_f, "#8b5a2b"),
            box("leg_right", 0.2, 0.8, 5.0, 5.4, table_f, "#8b5a2b"),
            box("table", 3.0, 0.2, 4.0, 4.92, table_f, "#8b5a2b"))


def simulation() -> Simulation:
    """The time stepping and solver settings that stand in for the authors' Box2D world."""
    return Simulation(time_step=1.0 / FPS, substeps=SUBSTEPS, horizon=(SETTLE_FRAMES + RUN_FRAMES) / FPS,
                      iterations=ITERATIONS, collision_slop=SLOP, rest_window=REST_WINDOW, damping=DAMPING_PER_SECOND,
                      angular_damping=1.0, remove_below=FALL_LEVEL)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: malformed JSON ({' '.join(str(exc).split())})") from None


def _bricks(path: Path, removed: str, asked: str | None) -> list[Block]:
    data = _read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of bricks")
    out = []
    for i, b in enumerate(data):
        try:
            name, x, y, angle = str(b["name"]), float(b["x"]), float(b["y"]), float(b["angle"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"{path}: brick {i}: expected name, x, y, angle") from None
        if not all(map(math.isfinite, (x, y, angle))):
            raise InputError(f"{path}: brick {name!r}: non-finite coordinates")
        if x == -5 and y == -5:
            continue  # absent from this tower
        color = REMOVED_COLOR if name == removed else ASKED_COLOR if name == asked else BRICK_COLOR
        try:  # a brick the scene rules refuse (a bad name, coordinates out of range) names the tower's file
            out.append(Block(id=name, position=(x, WORLD_HEIGHT - y), width=BRICK_W, height=BRICK_H, angle=-angle,
                             density=BRICK_DENSITY, friction=_friction(BRICK_FRICTION), elasticity=0.0, skin=SKIN,
                             color=color))
        except InputError as exc:
            raise exc.prefixed(str(path)) from None
    return out


def _exp3_key(root: Path) -> dict[int, dict]:
    data = _read_json(root / "data" / "exp3_key.json")
    try:
        return {int(e["stimulus"]): e for e in data if e.get("class") != "catch trial"}
    except (TypeError, KeyError, ValueError, AttributeError):
        raise InputError(f"{root / 'data' / 'exp3_key.json'}: expected a list of {{stimulus, a, b}} entries") from None


def load_stimuli(root: str | Path, experiment: int) -> StimulusSet:
    """The 42 towers of one experiment as ipe stimuli (ids ``exp{N}-{T}``)."""
    root = Path(root)
    if experiment not in (1, 2, 3):
        raise InputError(f"--experiment must be 1, 2 or 3, got {experiment}")
    folder = root / "data" / f"exp{experiment}"
    if not folder.is_dir():
        raise InputError(f"{folder}: not found (is {root} a Mental Jenga checkout?)")
    key = _exp3_key(root) if experiment == 3 else {}
    sim = simulation()
    statics = _statics(experiment)
    stimuli = []
    for t in range(1, N_TRIALS + 1):
        if experiment == 3:
            if t not in key:
                raise InputError(f"{root / 'data' / 'exp3_key.json'}: no entry for stimulus {t}")
            removed, asked = f"brick_{key[t]['a']}", f"brick_{key[t]['b']}"
            query = Query("body_falls", {"body": asked, "level": FALL_LEVEL})
            meta = {"tower": str(key[t].get("tower")), "authors_probability": key[t].get("probability"),
                    "authors_class": key[t].get("class")}
        else:
            removed, asked = "brick_0", None
            query = Query("off_table", {"level": FALL_LEVEL})
            meta = {}
        bricks = _bricks(folder / f"{t}.json", removed, asked)
        ids = {b.id for b in bricks}
        for must in (removed, asked):
            if must is not None and must not in ids:
                raise InputError(f"{folder / f'{t}.json'}: brick {must!r} is not in the tower")
        scene = Scene(bodies=tuple(bricks), statics=statics, gravity=(0.0, -10.0), simulation=sim)
        stim = Stimulus(
            id=f"exp{experiment}-{t}", scene=scene, query=query,
            interventions=(Intervention("remove", SETTLE_FRAMES / FPS, (removed,)),),
            metadata={"source": "mental_jenga", "experiment": experiment, "trial": t, "removed": removed, **meta})
        # the checks of a stimulus file (duplicate brick names, overlapping bricks, …) name the tower's file
        check_stimulus(stim, where=str(folder / f"{t}.json"))
        stimuli.append(stim)
    return StimulusSet(tuple(stimuli), name=f"mental_jenga_exp{experiment}",
                       metadata={"source": "Zhou, Smith, Tenenbaum & Gerstenberg (2023), Mental Jenga",
                                 "experiment": experiment})


def _read_r(path: Path) -> pd.DataFrame:
    pyreadr = optional_import("pyreadr", f"{path}: reading R data")
    try:
        result = pyreadr.read_r(str(path))
    except Exception as exc:  # pyreadr raises its own error types
        raise InputError(f"{path}: cannot read R data ({' '.join(str(exc).split())[:160]})") from None
    if not result:
        raise InputError(f"{path}: no data frame inside")
    return next(iter(result.values()))


def load_responses(root: str | Path, experiment: int) -> pd.DataFrame | None:
    """The experiment's responses in ipe's tidy schema, or ``None`` when its files are absent.

    Experiment 2: the ``prediction`` condition of ``exp2_prediction.RData``
    (how many bricks will fall), without the participants the authors
    excluded (``exp2_participants.RData``, column ``exclude``).
    """
    rdir = Path(root) / "code" / "R" / "data"
    pred = rdir / f"exp{experiment}_prediction.RData"
    parts = rdir / f"exp{experiment}_participants.RData"
    if not pred.exists():
        return None
    df = _read_r(pred)
    need = {"participant", "trial", "response"}
    if not need <= set(df.columns):
        raise InputError(f"{pred}: expected columns {', '.join(sorted(need))}")
    if "condition" in df.columns:
        df = df[df["condition"].astype(str) == "prediction"]
    if parts.exists():
        p = _read_r(parts)
        if {"participant", "exclude"} <= set(p.columns):
            excluded = set(p.loc[p["exclude"].astype(bool), "participant"].astype(int))
            df = df[~df["participant"].astype(int).isin(excluded)]
    out = pd.DataFrame({
        "participant": df["participant"].astype(int).astype(str).to_numpy(),
        "stimulus_id": [f"exp{experiment}-{int(t)}" for t in df["trial"]],
        "response": df["response"].astype(float).to_numpy(),
        "trial_index": (pd.to_numeric(df["order"].astype(str), errors="coerce").fillna(-1).astype(int).to_numpy()
                        if "order" in df.columns else np.arange(len(df))),
        "condition": df["condition"].astype(str).to_numpy() if "condition" in df.columns else "prediction",
    })
    return out.dropna(subset=["response"]).reset_index(drop=True)


def authors_labels(root: str | Path, experiment: int) -> pd.DataFrame | None:
    """The authors' per-brick labels: ``stimulus_id, body, fall`` (``None`` when absent)."""
    path = Path(root) / "code" / "R" / "data" / f"exp{experiment}_info.RData"
    if not path.exists():
        return None
    df = _read_r(path)
    if not {"trial", "index", "fall"} <= set(df.columns):
        raise InputError(f"{path}: expected columns trial, index, fall")
    return pd.DataFrame({"stimulus_id": [f"exp{experiment}-{int(t)}" for t in df["trial"]],
                         "body": [f"brick_{int(i)}" for i in df["index"]], "fall": df["fall"].astype(bool)})


def label_agreement(stimuli: StimulusSet, labels: pd.DataFrame, early_stop: bool = True) -> dict:
    """How often a no-noise ipe rollout reproduces the authors' per-brick ``fall`` labels.

    The removed brick is not counted. Returns the fraction of bricks, the
    count, and per-stimulus mismatches. ``early_stop=False`` runs each
    rollout to its horizon.
    """

    by_id = {s.id: s for s in stimuli}
    hits = total = 0
    per_stim = {}
    for sid, g in labels.groupby("stimulus_id", sort=False):
        stim = by_id.get(sid)
        if stim is None:
            continue
        scene, schedule = apply_noise(stim, [], sample_seed(0, sid, 0, 0))
        res = rollout(scene, schedule, early_stop=early_stop)
        fell = dict(zip(res.body_ids, res.final[:, 1] < FALL_LEVEL))
        removed = {b for iv in stim.interventions if iv.type == "remove" for b in iv.bodies}
        miss = 0
        for body, lab in zip(g["body"], g["fall"]):
            if body in removed or body not in fell:
                continue
            total += 1
            ok = bool(fell[body]) == bool(lab)
            hits += ok
            miss += not ok
        per_stim[sid] = miss
    return {"agreement": hits / total if total else math.nan, "bricks": total, "matched": hits,
            "mismatches_per_stimulus": {k: v for k, v in per_stim.items() if v}}


@dataclass
class ImportResult:
    stimuli_path: Path
    responses_path: Path | None
    report_path: Path
    report: dict


def import_mental_jenga(root: str | Path, experiment: int, out_dir: str | Path, early_stop: bool = True
                        ) -> ImportResult:
    """Write ``stimuli.json``, ``responses.csv`` (when responses exist) and ``import_report.json``.

    ``early_stop=False``: the no-noise rollouts of the label agreement run to their horizon.
    """

    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: {'is a file, expected' if root.exists() else 'no such directory, expected'} "
                         "the folder of a Mental Jenga checkout (with data/exp1 …)")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    stimuli = load_stimuli(root, experiment)
    responses = load_responses(root, experiment)
    labels = authors_labels(root, experiment)
    out.mkdir(parents=True, exist_ok=True)
    spath = save_stimuli(stimuli, out / "stimuli.json", name=stimuli.name)
    rpath = None
    report: dict = {"experiment": experiment, "stimuli": len(stimuli), "root": str(root)}
    if responses is not None:

        responses = validate_responses(responses, stimuli=stimuli, where=str(root))
        rpath = write_csv(out / "responses.csv", responses)
        report.update(responses=len(responses), participants=int(responses["participant"].nunique()))
    else:
        report["responses"] = None
    if labels is not None:
        report["label_agreement"] = label_agreement(stimuli, labels, early_stop=early_stop)
    report_path = write_json(out / "import_report.json", report)
    return ImportResult(spath, rpath, report_path, report)
