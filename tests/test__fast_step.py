import numpy as np

from ipe._fast_step import fast_steps, scale_linear_velocities
from ipe.world import World


def test_fast_steps_are_bit_identical_to_space_step(demo):
    scene = demo[1].scene
    a, b = World(scene), World(scene)
    for _ in range(200):
        a.space.step(a.settings.dt)
    fast_steps(b.space, b.settings.dt, 200)
    assert np.array_equal(a.state(), b.state())


def test_scale_linear_velocities_scales_every_body_and_nothing_else(demo):
    import pymunk.batch

    world = World(demo[1].scene)
    for k in range(world.n_bodies):
        world.set_velocity(k, (1.0 + k, -2.0))
    spin = [b.angular_velocity for b in world.bodies]
    scale_linear_velocities(world.space, 0.5, pymunk.batch.Buffer())
    assert [world.velocity(k) for k in range(world.n_bodies)] == [(0.5 + 0.5 * k, -1.0) for k in range(world.n_bodies)]
    assert [b.angular_velocity for b in world.bodies] == spin
