"""Rollouts that provably run the same physics are simulated once per batch, with the same table."""
import ipe
import ipe.runner as runner
from ipe.noise import NoiseParams
from spies import counting_rollouts


def _simulate(points, monkeypatch, share=True):
    with counting_rollouts(monkeypatch) as calls:
        if not share:
            monkeypatch.setattr(runner, "same_physics_key", lambda *a: None)
        towers = ipe.generate_towers(3, seed=2013)
        table = ipe.simulate(towers, points, n_samples=10, seed=4, progress=False)
    return table, len(calls)


def test_push_only_and_noise_free_points_share_rollouts_and_keep_the_table(monkeypatch):
    points = [NoiseParams(), NoiseParams(phi=0.2), NoiseParams(sigma=0.1, phi=0.2)]
    shared, n_shared = _simulate(points, monkeypatch)
    each, n_each = _simulate(points, monkeypatch, share=False)
    assert shared.equals(each)
    # No noise: one rollout per tower (9 of 10 saved); the push alone: one per direction (at least 8 saved);
    # with σ every sample is its own. (simulate may run a few rollouts of its own besides the table's.)
    assert n_each - n_shared >= 3 * 9 + 3 * 8


def test_sources_with_continuous_draws_never_share():
    towers = ipe.generate_towers(1, seed=2013)
    stim = towers[0]
    for p in (NoiseParams(sigma=0.1), NoiseParams(mu=0.2, phi=0.2), NoiseParams(friction=0.1)):
        scene, schedule = runner.prepare_sample(stim, p, 0, 0, [stim.query])
        assert runner.same_physics_key(stim, p, scene, schedule) is None
    p = NoiseParams(phi=0.2)
    keys = {runner.same_physics_key(stim, p, *runner.prepare_sample(stim, p, 0, s, [stim.query])) for s in range(20)}
    assert len(keys) == 2
