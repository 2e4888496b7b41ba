import math

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.noise import ForceNoise, FrictionNoise, MassNoise, NoiseParams, PerceptualNoise, apply_noise
from ipe.scene import Block, Scene
from ipe.seeding import sample_seed, source_rng
from ipe.stimuli.towers import generate_towers
from ipe.world import find_overlaps

from scenes import stack_scene, stim


def test_zero_noise_is_the_identity(demo):
    assert NoiseParams().sources() == []
    s = demo[0]
    scene, sched = apply_noise(s, NoiseParams().sources(), sample_seed(0, s.id, 0, 0))
    assert scene is s.scene and sched.gravity_until is None


def test_perceptual_noise_has_the_documented_scale():
    # Blocks far apart never overlap, so the shifts are the raw draws.
    bodies = tuple(Block(id=f"b{i}", position=(i * 1.0, 0.05), width=0.3, height=0.1) for i in range(40))
    scene = Scene(bodies=bodies)
    src = PerceptualNoise(sigma=0.5)
    dx = []
    for k in range(50):
        out = src.perturb_scene(scene, np.random.default_rng(k))
        dx += [b.position[0] - a.position[0] for a, b in zip(bodies, out.bodies)]
        assert all(b.position[1] == a.position[1] for a, b in zip(bodies, out.bodies))
    # sigma is in short sides (0.1 m): sd = 0.05 m
    assert np.std(dx) == pytest.approx(0.05, rel=0.05)
    assert abs(np.mean(dx)) < 0.005


def test_angle_noise():
    scene = Scene(bodies=tuple(Block(id=f"b{i}", position=(i * 1.0, 0.5), width=0.3, height=0.1)
                               for i in range(50)))
    out = PerceptualNoise(sigma=0.0, angle_sigma=0.05).perturb_scene(scene, np.random.default_rng(0))
    ang = [b.angle for b in out.bodies]
    assert np.std(ang) == pytest.approx(0.05, rel=0.25)


def test_perceptual_noise_resolves_overlaps(demo):
    src = PerceptualNoise(sigma=1.5, angle_sigma=0.05)
    for s in list(demo)[:4]:
        for k in range(4):
            assert find_overlaps(src.perturb_scene(s.scene, np.random.default_rng(k))) == []


def test_force_noise_is_a_push_of_phi_weights_both_ways():
    scene = stack_scene([0.0])
    dirs = set()
    for k in range(40):
        from ipe.world import Schedule

        sched = Schedule()
        ForceNoise(phi=0.3).add_to_schedule(scene, np.random.default_rng(k), sched)
        t_end, (gx, gy) = sched.gravity_until
        assert t_end == 0.2 and gy == scene.gravity[1]
        assert abs(gx) == pytest.approx(0.3 * 9.81)
        dirs.add(np.sign(gx))
    assert dirs == {-1.0, 1.0}


def test_force_noise_moves_a_free_block_by_the_expected_amount():
    from ipe.montecarlo import run_sample

    # A block on ice: a 0.5 g push for 0.2 s gives v = 0.98 m/s, then it glides.
    scene = stack_scene([0.0])
    scene = scene.with_bodies([Block(id="b0", position=(0.0, 0.05), width=0.3, height=0.1, friction=0.0)])
    s = stim(scene, query="distance")
    vals, r = run_sample(s, NoiseParams(phi=0.5), seed=0, sample=0, queries=[s.query], early_stop=False)
    expected = 0.5 * 9.81 * 0.2 ** 2 / 2 + 0.5 * 9.81 * 0.2 * 1.8
    assert vals[0] == pytest.approx(expected, rel=0.01)


def test_mass_noise_perturbs_the_ratio_by_mu():
    towers = generate_towers(2, seed=3, mass_variants=True)
    scene = towers[0].scene
    src = MassNoise(mu=0.4)
    logr = []
    for k in range(400):
        out = src.perturb_scene(scene, np.random.default_rng(k))
        heavy = [b.effective_density for b in out.bodies if b.material == "heavy"]
        light = [b.effective_density for b in out.bodies if b.material == "light"]
        assert light == [1.0] * len(light)  # the lightest material is the reference
        assert len(set(heavy)) == 1
        logr.append(math.log(heavy[0] / light[0]))
    assert np.mean(logr) == pytest.approx(math.log(10), abs=0.05)
    assert np.std(logr) == pytest.approx(0.4, rel=0.1)


def test_mass_noise_ignores_single_material(demo):
    assert MassNoise(mu=1.0).perturb_scene(demo[0].scene, np.random.default_rng(0)) is demo[0].scene


def test_sources_draw_independently():
    # Switching force noise on does not change what perceptual noise draws.
    s = stim(stack_scene([0.0, 0.02, 0.04]))
    ss = sample_seed(5, s.id, 0, 3)
    a, _ = apply_noise(s, NoiseParams(sigma=0.3).sources(), ss)
    b, sched = apply_noise(s, NoiseParams(sigma=0.3, phi=0.2).sources(), ss)
    assert a == b and sched.gravity_until is not None
    r1 = source_rng(ss, "perceptual").standard_normal(3)
    r2 = source_rng(ss, "force").standard_normal(3)
    assert not np.allclose(r1, r2)


@pytest.mark.parametrize("bad", [dict(sigma=-0.1), dict(phi=float("nan")), dict(mu=float("inf")), dict(sigma="a")])
def test_bad_noise_parameters(bad):
    with pytest.raises(InputError):
        NoiseParams(**bad)


def test_point_keys_are_stable_and_distinct():
    assert NoiseParams(sigma=0.1).key() == NoiseParams(sigma=0.1).key()
    assert NoiseParams(sigma=0.1).key() != NoiseParams(sigma=0.2).key()
    # Known value: keys must not change between runs or machines.
    assert NoiseParams().key() == NoiseParams(0, 0, 0, 0, 0.2).key()


def test_point_keys_of_older_points_never_change():
    # Fields added later (motion noise, friction) enter the key only when set, so these stay fixed.
    assert NoiseParams(sigma=0.2, phi=0.1).key() == 225764425538020309
    assert NoiseParams().key() == 838430281624041469
    assert NoiseParams(collision_angle=0.3).key() == 14774023484486747152
    assert NoiseParams(friction=0.5).key() not in {NoiseParams().key(), NoiseParams(sigma=0.5).key()}


def test_friction_noise_scales_every_contact_by_one_lognormal_factor():
    scene = stack_scene([0.0, 0.02])
    src = FrictionNoise(friction=0.8)
    assert FrictionNoise(0.0).is_null() and FrictionNoise(0.0).perturb_scene(scene, np.random.default_rng(0)) is scene
    logs = []
    for k in range(600):
        out = src.perturb_scene(scene, np.random.default_rng(k))
        ratios = [b.friction / a.friction for a, b in zip(scene.bodies + scene.statics, out.bodies + out.statics)]
        assert np.allclose(ratios, ratios[0])  # one factor for every shape
        assert out.bodies[0].position == scene.bodies[0].position
        logs.append(math.log(ratios[0] ** 2))  # a contact's coefficient is the product of two shapes'
    assert np.std(logs) == pytest.approx(0.8, rel=0.1)
    assert abs(np.mean(logs)) < 0.1


def _block_on_ramp(theta: float, contact_friction: float):
    from ipe.scene import StaticBox

    n = (-math.sin(theta), math.cos(theta))
    ramp = StaticBox(id="ramp", position=(0.0, 0.0), width=4.0, height=0.2, angle=theta,
                     friction=math.sqrt(contact_friction))
    d = 0.1 + 0.05 + 1e-4
    block = Block(id="b", position=(n[0] * d, n[1] * d), width=0.3, height=0.1, angle=theta,
                  friction=math.sqrt(contact_friction))
    return Scene(bodies=(block,), statics=(ramp,))


def test_friction_noise_lets_a_block_slide_down_a_ramp_that_holds_it():
    from ipe.world import rollout

    theta = math.radians(25)  # tan 25° = 0.466: a contact friction of 0.6 holds the block, 0.6·F < 0.466 does not
    s = stim(_block_on_ramp(theta, 0.6))

    def moved(params, k):
        scene, sched = apply_noise(s, params.sources(), sample_seed(0, s.id, params.key(), k))
        r = rollout(scene, sched, early_stop=False)
        return float(np.hypot(*(r.final[0, :2] - r.initial[0, :2])))

    assert moved(NoiseParams(), 0) < 0.01
    slid = [moved(NoiseParams(friction=1.0), k) > 0.05 for k in range(40)]
    # P(0.6·exp(ζ) < tan 25°) = Φ(ln(0.466/0.6)) = 0.40
    assert 0.2 <= np.mean(slid) <= 0.6
