import numpy as np
import pymunk
import pymunk.batch

from ipe._fast_step import VelocityScaler, fast_steps
from ipe.world import World


def test_fast_steps_are_bit_identical_to_space_step(demo):
    scene = demo[1].scene
    a, b = World(scene), World(scene)
    for _ in range(200):
        a.space.step(a.settings.dt)
    fast_steps(b.space, b.settings.dt, 200)
    assert np.array_equal(a.state(), b.state())


def test_velocity_scaler_scales_every_body_and_nothing_else(demo):
    world = World(demo[1].scene)
    for k in range(world.n_bodies):
        world.set_velocity(k, (1.0 + k, -2.0))
    spin = [b.angular_velocity for b in world.bodies]
    VelocityScaler(world.space, 0.5)()
    assert [world.velocity(k) for k in range(world.n_bodies)] == [(0.5 + 0.5 * k, -1.0) for k in range(world.n_bodies)]
    assert [b.angular_velocity for b in world.bodies] == spin


def _batch_scale(space: pymunk.Space, factor: float, buffer: pymunk.batch.Buffer) -> None:
    """The reference: pymunk's batch read, ``v *= factor``, pymunk's batch write."""
    buffer.clear()
    pymunk.batch.get_space_bodies(space, pymunk.batch.BodyFields.VELOCITY, buffer)
    v = np.frombuffer(buffer.float_buf(), dtype=np.float64)
    v *= factor
    pymunk.batch.set_space_bodies(space, pymunk.batch.BodyFields.VELOCITY, buffer)


def test_velocity_scaler_steps_bit_identically_to_pymunks_batch_functions_through_removals(demo):
    """Stepping with the scaler gives the states that pymunk's own batch read/write give, also after bodies
    leave the space (the scaler's view is made again when the count changes)."""
    scene = demo[1].scene
    a, b = World(scene), World(scene)
    for w in (a, b):
        for k in range(w.n_bodies):
            w.set_velocity(k, (0.3 * (k % 3) - 0.2, 0.1 * k))
    factor = 0.97
    buffer, scale = pymunk.batch.Buffer(), VelocityScaler(b.space, factor)
    for step in range(300):
        if step in (100, 200):  # take a body out of both worlds
            k = step // 100 - 1
            a.space.remove(a.bodies[k], a.shapes[k])
            b.space.remove(b.bodies[k], b.shapes[k])
        a.space.step(a.settings.dt)
        _batch_scale(a.space, factor, buffer)
        b.space.step(b.settings.dt)
        scale()
        assert np.array_equal([bd.velocity for bd in a.bodies], [bd.velocity for bd in b.bodies]), step
        assert np.array_equal([bd.position for bd in a.bodies], [bd.position for bd in b.bodies]), step


def test_body_batch_reads_what_pymunks_batch_functions_read_ids_included(demo):
    """Floats and body ids as pymunk.batch.get_space_bodies gives them, also after a body leaves the space."""
    from ipe._fast_step import BodyBatch

    world = World(demo[1].scene)
    fields = pymunk.batch.BodyFields.BODY_ID | pymunk.batch.BodyFields.POSITION | pymunk.batch.BodyFields.ANGLE
    batch = BodyBatch(world.space, fields)
    for leave in (False, True):
        if leave:
            world.space.remove(world.bodies[0], world.shapes[0])
        world.space.step(world.settings.dt)
        ref = pymunk.batch.Buffer()
        pymunk.batch.get_space_bodies(world.space, fields, ref)
        assert np.array_equal(batch.read(), np.frombuffer(ref.float_buf(), dtype=np.float64))
        assert np.array_equal(batch.ids, np.frombuffer(ref.int_buf(), dtype=np.uintp))
        assert np.array_equal(world.state(), world.read_state())
