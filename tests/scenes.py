"""Small hand-made scenes for the tests."""

from __future__ import annotations

from ipe.scene import Block, Query, Scene, StaticBox, Stimulus


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

