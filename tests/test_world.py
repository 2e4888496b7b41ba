"""World: the pymunk world of one rollout, and the body access the noise sources use instead of pymunk."""

import numpy as np

from ipe.scene import Ball, Block, Scene, StaticBox
from ipe.world import SolverSettings, World

from scenes import stack_scene


def _ball_scene():
    ball = Ball(id="ball", position=(0.0, 0.5), radius=0.05, velocity=(1.0, 0.0), label="ball")
    block = Block(id="blk", position=(0.5, 0.05), width=0.2, height=0.1)
    ground = StaticBox(id="g", position=(0, -0.05), width=6, height=0.1, label="obstacle")
    return Scene(bodies=(ball, block), statics=(ground,))


def test_velocity_access_reads_and_sets_the_bodies():
    world = World(_ball_scene())
    assert world.n_bodies == 2
    assert world.velocity(0) == (1.0, 0.0) and world.velocity(1) == (0.0, 0.0)
    world.set_velocity(1, (0.25, -0.5))
    assert world.velocity(1) == (0.25, -0.5)
    assert world.position(0) == (0.0, 0.5)
    assert world.mass(1) == world.bodies[1].mass > 0
    world.advance(1)
    x, _ = world.position(1)
    assert x > 0.5  # the velocity that was set is the one simulated


def test_is_active_follows_removal():
    world = World(stack_scene([0.0, 0.0]))
    assert world.is_active(0) and world.is_active(1)
    world.remove(0)
    assert not world.is_active(0) and world.is_active(1)


def test_shape_index_and_labelled_shapes_name_the_shapes_contacts_report():
    world = World(_ball_scene())
    index = world.shape_index()
    assert index == {id(world.shapes[0]): 0, id(world.shapes[1]): 1}
    assert world.labelled_shapes(["obstacle"]) == {id(world.static_shapes[0])}
    assert world.labelled_shapes(["ball", "obstacle"]) == {id(world.static_shapes[0]), id(world.shapes[0])}
    assert world.labelled_shapes([]) == set()


def test_set_gravity_changes_the_fall():
    scene = stack_scene([0.0])
    a, b = World(scene), World(scene)
    b.set_gravity((0.0, 0.0))
    for w in (a, b):
        w.space.remove(*w.space.static_body.shapes)  # nothing to land on
        w.advance(10)
    assert a.state()[0, 1] < scene.bodies[0].position[1] == b.state()[0, 1]


def test_solver_settings_follow_the_scene_scale():
    scene = stack_scene([0.0, 0.1])
    st = SolverSettings.for_scene(scene)
    assert st.iterations == 30 and st.collision_slop == 0.002 * scene.short_scale
    assert np.isclose(st.collision_bias, 0.8 ** 60)
