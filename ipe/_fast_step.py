"""Fast stepping: chipmunk's step function called directly, through pymunk's private C binding.

:func:`fast_steps` gives exactly the physics of :meth:`pymunk.Space.step`
with less Python per step; :func:`scale_linear_velocities` applies a linear
damping beyond the space's own in one batch read and one batch write. This is
the only module that steps a space through pymunk's internals
(``pymunk._chipmunk_cffi``); :class:`ipe.world.World` calls it.
"""

from __future__ import annotations

import numpy as np
import pymunk
import pymunk.batch
from pymunk._chipmunk_cffi import lib as _cp


def fast_steps(space: pymunk.Space, dt: float, n: int, linear_factor: float = 1.0,
               buffer: pymunk.batch.Buffer | None = None) -> None:
    """Step ``space`` ``n`` times by ``dt``: the same physics as ``space.step``, less Python per step.

    Steps call chipmunk's ``cpSpaceStep`` directly: with no Python collision
    handlers or post-step callbacks registered, that is exactly what
    ``Space.step`` does, minus its per-call bookkeeping. The first step goes
    through :meth:`pymunk.Space.step` when that bookkeeping has work to do:
    bodies added since the last step (pymunk checks their mass), shapes
    removed (pymunk releases them) or collision handlers registered (pymunk
    locks the space and runs their post-step callbacks). The tests check that both give
    bit-identical states. (The only handlers ipe registers,
    :meth:`ipe.world.World.on_contact` for contact tracking and collision noise, come
    with rollouts that step one step at a time, through ``Space.step``.)

    ``linear_factor`` ≠ 1 multiplies every body's linear velocity by it after
    each step (:func:`scale_linear_velocities`): linear damping beyond the
    space's own, which pymunk applies to angular velocity too.
    """
    if n <= 0:
        return
    cp_step = _cp.cpSpaceStep
    handle = space._space
    if space._bodies_to_check or space._removed_shapes or space._handlers:
        space.step(dt)
    else:
        cp_step(handle, dt)
    if linear_factor == 1.0:
        for _ in range(n - 1):
            cp_step(handle, dt)
        return
    buffer = buffer or pymunk.batch.Buffer()
    scale_linear_velocities(space, linear_factor, buffer)
    for _ in range(n - 1):
        cp_step(handle, dt)
        scale_linear_velocities(space, linear_factor, buffer)


_VELOCITY = pymunk.batch.BodyFields.VELOCITY


def scale_linear_velocities(space: pymunk.Space, factor: float, buffer: pymunk.batch.Buffer) -> None:
    """Multiply the linear velocity of every body in ``space`` by ``factor`` (one batch read, one batch write)."""
    buffer.clear()
    pymunk.batch.get_space_bodies(space, _VELOCITY, buffer)
    v = np.frombuffer(buffer.float_buf(), dtype=np.float64)
    v *= factor
    pymunk.batch.set_space_bodies(space, _VELOCITY, buffer)

