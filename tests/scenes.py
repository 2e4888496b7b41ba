"""Small hand-made scenes for the tests."""

from __future__ import annotations

import math

from ipe.scene import Ball, Block, Query, Scene, Simulation, StaticBox, StaticRegularPolygon, Stimulus


def stack_scene(offsets, width=0.3, height=0.1, standing=()):
    """Blocks stacked on a ground whose top is y = 0, shifted by ``offsets``."""
    bodies, y = [], 0.0
    for i, dx in enumerate(offsets):
        w, h = (height, width) if i in standing else (width, height)
        bodies.append(Block(id=f"b{i}", position=(dx, y + h / 2), width=w, height=h))
        y += h
    ground = StaticBox(id="ground", position=(0.0, -0.05), width=6.0, height=0.1)
    return Scene(bodies=tuple(bodies), statics=(ground,))


def stim(scene, sid="s", query="fall", **kw):
    return Stimulus(id=sid, scene=scene, query=Query(query, kw))



def peak_world(offset: float = 0.0, id: str = "peak") -> Stimulus:
    """A ball dropped from rest onto the apex of a triangle: it lands left (x ≈ 150) or right (x ≈ 450).

    ``offset``: the ball starts this far right of the apex (px), which tilts the odds of the two sides."""
    scene = Scene(bodies=(Ball("ball", (300.0 + offset, 420.0), 20.0, elasticity=0.3, friction=0.3),),
                  statics=(StaticBox("ground", (300.0, -10.0), 1200.0, 20.0, label="ground", elasticity=0.3),
                           StaticRegularPolygon("peak", 3, 60.0, (300.0, 250.0), math.pi / 2, label="obstacle",
                                                elasticity=0.3)),
                  gravity=(0.0, -1500.0), simulation=Simulation(horizon=2.0))
    return Stimulus(id, scene, Query("landing_x", {"body": "ball", "target": "ground"}))
