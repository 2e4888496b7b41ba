"""Plinko worlds: a ball dropped through a hole in a box's lid falls among polygon obstacles to the ground.

After Gerstenberg, Siegel & Tenenbaum's Plinko paradigm (and Smith & Vul
2013): people see the box, the obstacles and the hole the ball will drop
from, and say *where it will land* (a click on the ground). Each stimulus is
one world in **pixel units** (y up, as everywhere in ipe):

* the box: ``ground`` (a static box whose top is y = 0, 600 px wide), two
  walls (``wall_left``, ``wall_right``, 600 px tall) and a lid at
  y = 600–620 with three holes (``lid_0`` … ``lid_3`` are the pieces between
  and beside the holes), the holes centred at x = 150, 300 and 450 px and
  ``hole_width`` (70 px) wide;
* a few (default 3) static regular polygons labelled ``"obstacle"``
  (``obstacle_0`` …), 3 to 6 sides, circumradius 45–75 px, at random
  positions and rotations inside the box, at least one ball diameter apart
  from each other and from the walls so the ball can pass everywhere;
* a ball (``ball``, radius 25 px) at rest in one of the holes;
* gravity ``[0, -1500]`` px/s², frames of 1/60 s in 4 substeps, a 3 s
  horizon;
* as in the published engine (plain pymunk): pymunk's own collision bias
  ``(1 - 0.1) ** 60`` (:data:`COLLISION_BIAS`), and collision noise only on
  contacts with the obstacles (``simulation.collision_noise_labels =
  ["obstacle"]``): walls, lid and ground bounce the ball without noise.

The query is ``landing_x`` of the ball on ``ground``. ``metadata`` records
the hole, the no-noise landing x, the first obstacle the ball touches
(``first_obstacle``) and its landing time. A world is kept only if the
no-noise ball touches an obstacle and reaches the ground within the horizon
(``require_obstacle=False`` also keeps straight drops). The same seed
always gives the same file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..montecarlo import run_sample
from ..noise import NoiseParams
from ..queries import parse_query
from ..checks import StimulusSet, check_stimulus
from ..scene import Ball, Query, Scene, Simulation, StaticBox, StaticRegularPolygon, Stimulus
from ..validation import POSITIVE_INT, SEED, validate_params

BOX_WIDTH = 600.0
BOX_HEIGHT = 600.0
WALL = 20.0
HOLES = (150.0, 300.0, 450.0)
BALL_RADIUS = 25.0
GRAVITY = (0.0, -1500.0)
COLLISION_BIAS = (1.0 - 0.1) ** 60
"""pymunk's default collision bias, which the published Plinko engine keeps."""
OBSTACLE_COLORS = ("#4363d8", "#3cb44b", "#f58231", "#911eb4", "#42d4f4", "#f032e6")


@dataclass(frozen=True)
class PlinkoOptions:
    """How Plinko worlds are built (lengths in pixels)."""

    n_obstacles: int = 3
    hole_width: float = 70.0
    min_radius: float = 45.0
    max_radius: float = 75.0
    ball_radius: float = BALL_RADIUS
    elasticity: float = 0.5
    friction: float = 0.3
    horizon: float = 3.0
    require_obstacle: bool = True
    max_tries: int = 500
    collision_bias: float = COLLISION_BIAS
    collision_noise_labels: tuple[str, ...] | None = ("obstacle",)


def box_statics(hole_width: float = 70.0, elasticity: float = 0.5, friction: float = 0.3) -> list:
    """The ground, the walls and the lid (with its three holes) of the Plinko box."""
    e, f = elasticity, friction
    out: list = [
        StaticBox("ground", (BOX_WIDTH / 2, -WALL / 2), BOX_WIDTH + 2 * WALL, WALL, friction=f, elasticity=e,
                  color="#808080", label="ground"),
        StaticBox("wall_left", (-WALL / 2, BOX_HEIGHT / 2), WALL, BOX_HEIGHT, friction=f, elasticity=e,
                  color="#808080", label="wall"),
        StaticBox("wall_right", (BOX_WIDTH + WALL / 2, BOX_HEIGHT / 2), WALL, BOX_HEIGHT, friction=f,
                  elasticity=e, color="#808080", label="wall"),
    ]
    edges = [-WALL] + [x for h in HOLES for x in (h - hole_width / 2, h + hole_width / 2)] + [BOX_WIDTH + WALL]
    for k in range(len(HOLES) + 1):
        x0, x1 = edges[2 * k], edges[2 * k + 1]
        out.append(StaticBox(f"lid_{k}", ((x0 + x1) / 2, BOX_HEIGHT + WALL / 2), x1 - x0, WALL, friction=f,
                             elasticity=e, color="#808080", label="lid"))
    return out


def _place_obstacles(rng: np.random.Generator, opt: PlinkoOptions) -> list[StaticRegularPolygon] | None:
    gap = 2 * opt.ball_radius + 10.0
    placed: list[tuple[float, float, float]] = []
    out = []
    for k in range(opt.n_obstacles):
        for _ in range(200):
            r = float(rng.uniform(opt.min_radius, opt.max_radius))
            x = float(rng.uniform(r + gap, BOX_WIDTH - r - gap))
            y = float(rng.uniform(120.0 + r, BOX_HEIGHT - 2 * opt.ball_radius - gap - r))
            if all(math.hypot(x - a, y - b) > r + c + gap for a, b, c in placed):
                break
        else:
            return None
        sides = int(rng.integers(3, 7))
        angle = float(rng.uniform(0.0, 2 * math.pi / sides))
        placed.append((x, y, r))
        out.append(StaticRegularPolygon(f"obstacle_{k}", sides, round(r, 3), (round(x, 3), round(y, 3)),
                                        round(angle, 4), friction=opt.friction, elasticity=opt.elasticity,
                                        color=OBSTACLE_COLORS[k % len(OBSTACLE_COLORS)], label="obstacle"))
    return out


def plinko_scene(obstacles, hole: int, opt: PlinkoOptions = PlinkoOptions()) -> Scene:
    """The Plinko world with the given obstacles and the ball in hole ``hole`` (0, 1 or 2)."""
    if hole not in range(len(HOLES)):
        raise InputError(f"hole must be 0, 1 or 2, got {hole!r}")
    ball = Ball("ball", (HOLES[hole], BOX_HEIGHT + WALL / 2), opt.ball_radius, friction=opt.friction,
                elasticity=opt.elasticity, color="#e6194b")
    return Scene(bodies=(ball,), statics=tuple(box_statics(opt.hole_width, opt.elasticity, opt.friction))
                 + tuple(obstacles), gravity=GRAVITY,
                 simulation=Simulation(time_step=1 / 60, substeps=4, horizon=opt.horizon,
                                       collision_bias=opt.collision_bias,
                                       collision_noise_labels=opt.collision_noise_labels))


@validate_params(n=POSITIVE_INT, seed=SEED)
def generate_plinko(n: int, seed: int = 0, options: PlinkoOptions | None = None) -> StimulusSet:
    """Generate ``n`` Plinko stimuli (see the module docstring); the same seed gives the same set."""
    opt = options or PlinkoOptions()
    if not 1 <= opt.n_obstacles <= 6:
        raise InputError(f"n_obstacles must be 1..6, got {opt.n_obstacles}")
    rng = np.random.default_rng(seed)  # the root stream of the seed (no spawn key): sets repeat bit for bit
    query = Query("landing_x", {"body": "ball", "target": "ground"})
    first = parse_query("first_contact:body=ball,target=ground")
    t_land = parse_query("time_to_land:body=ball,target=ground")
    out: list[Stimulus] = []
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > opt.max_tries * n:
            raise InputError(f"could not build {n} Plinko worlds in {tries - 1} tries")
        obstacles = _place_obstacles(rng, opt)
        if obstacles is None:
            continue
        hole = int(rng.integers(0, len(HOLES)))
        sid = f"plinko_{len(out):03d}"
        stim = Stimulus(sid, plinko_scene(obstacles, hole, opt), query, metadata={})
        check_stimulus(stim)
        vals, res = run_sample(stim, NoiseParams(), 0, 0, [query, t_land, first])
        if not math.isfinite(vals[1]):
            continue  # the ball never reached the ground (it rests, or is wedged, on an obstacle)
        ids = [o.id for o in obstacles]
        first_obstacle = res.events.first_contact("ball", ids)
        if opt.require_obstacle and first_obstacle is None:
            continue  # the ball fell straight through: nothing to judge
        meta = {"hole": hole, "hole_x": HOLES[hole], "landing_x_no_noise": round(float(vals[0]), 3),
                "time_to_land_no_noise": round(float(vals[1]), 4), "first_obstacle": first_obstacle,
                "units": "pixels"}
        out.append(Stimulus(sid, stim.scene, query, metadata=meta))
    return StimulusSet(tuple(out), name=f"plinko_seed{seed}")


__all__ = ["COLLISION_BIAS", "PlinkoOptions", "box_statics", "generate_plinko", "plinko_scene", "HOLES"]
