import numpy as np
import pytest

from ipe.geometry import find_overlaps, resolve_overlaps
from ipe.noise import NoiseParams
from ipe.scene import Block, Scene, StaticBox


def test_resolve_overlaps_separates_and_keeps_others():
    a = Block(id="a", position=(0.0, 0.05), width=0.3, height=0.1)
    b = Block(id="b", position=(0.25, 0.05), width=0.3, height=0.1)  # 5 cm into a
    c = Block(id="c", position=(1.0, 0.05), width=0.3, height=0.1)
    scene = Scene(bodies=(a, b, c), statics=(StaticBox(id="g", position=(0, -0.05), width=6, height=0.1),))
    assert len(find_overlaps(scene)) == 1
    fixed = resolve_overlaps(scene)
    assert find_overlaps(fixed) == []
    assert fixed.bodies[0] == a and fixed.bodies[2] == c
    assert fixed.bodies[1].position[0] == pytest.approx(0.3)


def _random_overlapping_scene(rng):
    from ipe.scene import Ball, StaticSegment

    bodies = []
    for k in range(8):
        x, y = rng.uniform(-0.4, 0.4), rng.uniform(0.0, 0.6)
        if k % 3 == 2:
            bodies.append(Ball(id=f"b{k}", position=(x, y), radius=rng.uniform(0.03, 0.08)))
        else:
            bodies.append(Block(id=f"b{k}", position=(x, y), width=rng.uniform(0.1, 0.3), height=0.1,
                                angle=rng.uniform(-0.5, 0.5), corner_radius=0.005 * (k % 2)))
    statics = (StaticBox(id="g", position=(0, -0.05), width=6, height=0.1),
               StaticSegment(id="wall", a=(0.45, 0.0), b=(0.2, 0.8), radius=0.01))
    return Scene(bodies=tuple(bodies), statics=statics)


def test_pooled_query_shapes_answer_as_shapes_built_fresh_in_a_space():
    """Overlap tests reuse pymunk shapes (ipe.geometry.query_shapes); they must give what fresh shapes give."""
    import pymunk

    from ipe import geometry as G
    from ipe import world as W

    rng = np.random.default_rng(7)
    scenes = [_random_overlapping_scene(rng) for _ in range(12)]
    for scene in scenes + scenes[::-1]:  # the second pass re-poses shapes that other scenes used
        space = pymunk.Space()
        fresh = []
        for b in scene.bodies:
            body, shape = W.build_dynamic_body(b)
            space.add(body, shape)
            fresh.append(shape)
        for s in scene.statics:
            shape = W.build_static_shape(space.static_body, s)
            space.add(shape)
            fresh.append(shape)
        dyn, stat = G.query_shapes(scene)
        pooled = dyn + stat
        for i in range(len(fresh)):
            for j in range(len(fresh)):
                if i != j:
                    assert G.separation_vector(pooled[i], pooled[j]) == G.separation_vector(fresh[i], fresh[j])
    first = [resolve_overlaps(s) for s in scenes]
    assert any(f is not s for f, s in zip(first, scenes))
    assert [resolve_overlaps(s) for s in scenes[::-1]] == first[::-1]


def test_noisy_rollouts_never_start_interpenetrating(demo):
    from ipe.noise import apply_noise
    from ipe.seeding import sample_seed

    params = NoiseParams(sigma=1.0, angle_sigma=0.1)
    for s in list(demo)[:6]:
        for k in range(5):
            scene, _ = apply_noise(s, params.sources(), sample_seed(1, s.id, 0, k))
            assert find_overlaps(scene) == []
