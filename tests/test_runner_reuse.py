"""A removal kick that finds nothing resting on the removed body changes nothing: such a stimulus's rollouts with
only the push and the kick active are simulated once per push (``runner.same_physics_key(empty_kick=True)``),
with the same table as when every rollout runs."""
import ipe
import ipe.runner as runner
from ipe.noise import NoiseParams
from ipe.scene import Intervention, Query, Stimulus
from scenes import stack_scene
from spies import counting_rollouts


def _stimulus(sid, removed):
    """Two stacked blocks; removing the top one (``b1``) leaves nothing to kick, removing ``b0`` kicks ``b1``."""
    return Stimulus(id=sid, scene=stack_scene([0.0, 0.02]), query=Query("fall", {}),
                    interventions=(Intervention(type="remove", time=0.2, bodies=(removed,)),))


POINTS = [NoiseParams(), NoiseParams(removal_impulse=1.0), NoiseParams(removal_impulse=3.0),
          NoiseParams(removal_impulse=2.0, phi=0.1)]


def _simulate(stimuli, monkeypatch, share=True):
    with counting_rollouts(monkeypatch) as calls:
        if not share:
            monkeypatch.setattr(runner, "same_physics_key", lambda *a: None)
        table = ipe.simulate(stimuli, POINTS, n_samples=8, seed=5, progress=False)
    return table, len(calls)


def test_an_empty_kick_runs_once_per_push_and_keeps_the_table(monkeypatch):
    stim = _stimulus("top", "b1")
    shared, n_shared = _simulate([stim], monkeypatch)
    each, n_each = _simulate([stim], monkeypatch, share=False)
    assert shared.equals(each)
    assert n_each == 4 * 8
    # no noise: 1; the first kicked rollout finds the kick empty (1, the same physics as no noise); φ: 2 pushes
    assert n_shared == 4


def test_a_kick_that_finds_something_is_never_shared(monkeypatch):
    stim = _stimulus("bottom", "b0")
    shared, n_shared = _simulate([stim], monkeypatch)
    each, n_each = _simulate([stim], monkeypatch, share=False)
    assert shared.equals(each)
    assert n_shared == 1 + 3 * 8  # only the noise-free point repeats
    scene, schedule = runner.prepare_sample(stim, POINTS[1], 5, 0, [stim.query])
    assert runner.same_physics_key(stim, POINTS[1], scene, schedule) is None
    runner.rollout(scene, schedule)
    assert runner.kick_was_empty(schedule) is False


def test_an_empty_kick_with_a_continuous_source_is_never_shared():
    stim = _stimulus("top", "b1")
    p = NoiseParams(removal_impulse=2.0, sigma=0.05)
    scene, schedule = runner.prepare_sample(stim, p, 5, 0, [stim.query])
    assert runner.same_physics_key(stim, p, scene, schedule, empty_kick=True) is None


def test_shared_rollouts_give_the_same_table_on_two_workers():
    """Each worker learns and shares on its own: the table is the serial one, whatever ran where."""
    stimuli = [_stimulus("top", "b1"), _stimulus("bottom", "b0")]
    serial = ipe.simulate(stimuli, POINTS, n_samples=8, seed=5, progress=False)
    pooled = ipe.simulate(stimuli, POINTS, n_samples=8, seed=5, progress=False, workers=2, batch_size=3)
    assert pooled.equals(serial)
