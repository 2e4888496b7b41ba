"""Fast stepping: chipmunk's step function called directly, through pymunk's private C binding.

:func:`fast_steps` gives exactly the physics of :meth:`pymunk.Space.step`
with less Python per step; :class:`VelocityScaler` applies a linear damping
beyond the space's own with pymunk's batch read and write, called straight
through their C functions. This is
the only module that steps a space through pymunk's internals
(``pymunk._chipmunk_cffi``); :class:`ipe.world.World` calls it.
"""

from __future__ import annotations

import numpy as np
import pymunk
import pymunk.batch
from pymunk._chipmunk_cffi import ffi as _ffi
from pymunk._chipmunk_cffi import lib as _cp


def fast_steps(space: pymunk.Space, dt: float, n: int, scale: "VelocityScaler | None" = None) -> None:
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

    ``scale`` (a :class:`VelocityScaler` of ``space``) multiplies every
    body's linear velocity by its factor after each step: linear damping
    beyond the space's own, which pymunk applies to angular velocity too.
    """
    if n <= 0:
        return
    cp_step = _cp.cpSpaceStep
    handle = space._space
    if space._bodies_to_check or space._removed_shapes or space._handlers:
        space.step(dt)
    else:
        cp_step(handle, dt)
    if scale is None:
        for _ in range(n - 1):
            cp_step(handle, dt)
        return
    scale()
    for _ in range(n - 1):
        cp_step(handle, dt)
        scale()


_VELOCITY = pymunk.batch.BodyFields.VELOCITY
_GET_FN = _ffi.addressof(_cp, "pmSpaceBodyGetIteratorFuncBatched")  # pymunk.batch's own iterators
_SET_FN = _ffi.addressof(_cp, "pmSpaceBodySetIteratorFuncBatched")


class BodyBatch:
    """pymunk's batch read and write of ``fields`` for every body of ``space``, called straight through their C
    functions.

    The same as :func:`pymunk.batch.get_space_bodies` and
    :func:`pymunk.batch.set_space_bodies` (bit for bit: tested), but with the
    batch structures made once and a numpy view kept on the buffer, so a read
    or a write is one C call: about a third of the Python of the batch
    functions, which matters where a rollout reads or writes after each
    step. The view is made again whenever the number of values read changes
    (bodies removed or culled): the buffer is reallocated only when it
    grows, which a changed count is the only sign of.
    """

    def __init__(self, space: pymunk.Space, fields: pymunk.batch.BodyFields):
        self._handle = space._space
        self._buffer = pymunk.batch.Buffer()  # owns the C arrays
        self._arr = self._buffer._float_arr
        self._data = _ffi.new("pmBatchedData *")
        self._data.fields = fields.value
        self._data.floatArray = self._buffer._float_arr
        self._data.intArray = self._buffer._int_arr
        self._iarr = self._buffer._int_arr
        self._n = self._ni = -1
        self._view = np.empty(0)
        self._ids = np.empty(0, dtype=np.uintp)

    def read(self) -> np.ndarray:
        """The float fields of every body, flat, in pymunk's internal order: a view, valid until the next read
        (the body ids, where ``fields`` hold ``BODY_ID``: :attr:`ids`)."""
        arr, iarr = self._arr, self._iarr
        arr.num = iarr.num = 0
        _cp.cpSpaceEachBody(self._handle, _GET_FN, self._data)
        n = arr.num
        if n != self._n:
            self._view = np.frombuffer(_ffi.buffer(arr.arr, _ffi.sizeof("cpFloat") * n), dtype=np.float64)
            self._n = n
        return self._view

    @property
    def ids(self) -> np.ndarray:
        """The body ids of the last :meth:`read` (``BODY_ID`` in ``fields``), in its order: a view, like it."""
        m = self._iarr.num
        if m != self._ni:
            self._ids = np.frombuffer(_ffi.buffer(self._iarr.arr, _ffi.sizeof("uintptr_t") * m), dtype=np.uintp)
            self._ni = m
        return self._ids

    def write(self) -> None:
        """Write the values of the last :meth:`read`'s view (changed in place) back to the bodies."""
        arr, iarr = self._arr, self._iarr
        ni = iarr.num
        arr.num = iarr.num = 0  # the set iterator reads from the start
        _cp.cpSpaceEachBody(self._handle, _SET_FN, self._data)
        arr.num, iarr.num = self._n, ni


class VelocityScaler:
    """Multiplies the linear velocity of every body of ``space`` by ``factor`` when called: a
    :class:`BodyBatch` read of the velocities, ``v *= factor`` in float64, and its write."""

    def __init__(self, space: pymunk.Space, factor: float):
        self.factor = float(factor)
        self._batch = BodyBatch(space, _VELOCITY)

    def __call__(self) -> None:
        batch = self._batch
        batch.read().__imul__(self.factor)
        batch.write()
