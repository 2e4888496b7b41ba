"""The IPE estimator: scikit-learn style parameters, the no-noise model, and the effect of σ and φ."""

from __future__ import annotations

import numpy as np
import pytest

import ipe
from ipe import IPE
from ipe.montecarlo import SUMMARY_COLUMNS
from ipe.noise import NoiseParams

N_SWEEP = 20  # samples per stimulus in the σ / φ sweeps


# --------------------------------------------------------------------------- parameters


def test_init_only_stores_parameters():
    m = IPE(sigma=0.3, phi=0.1, mu=0.2, angle_sigma=0.01, n_samples=7, seed=5, workers=2, backend="serial",
            early_stop=False, progress=False, push_duration=0.1)
    assert m.get_params() == dict(sigma=0.3, phi=0.1, mu=0.2, angle_sigma=0.01, n_samples=7, seed=5, workers=2,
                                  backend="serial", early_stop=False, progress=False, push_duration=0.1,
                                  target_se=None)
    # no validation in __init__ (scikit-learn convention): bad values surface when computing
    bad = IPE(n_samples=0)
    assert bad.n_samples == 0


def test_default_params():
    p = IPE().get_params()
    assert p["sigma"] == 0.0 and p["phi"] == 0.0 and p["mu"] == 0.0
    assert p["n_samples"] == 100 and p["seed"] == 0 and p["workers"] == 1


def test_get_params_round_trips_through_init():
    m = IPE(sigma=0.2, phi=0.05, n_samples=9, seed=3)
    clone = IPE(**m.get_params())
    assert clone.get_params() == m.get_params()
    assert clone is not m
    assert set(m.get_params(deep=False)) == set(m.get_params())


def test_set_params_changes_and_returns_self():
    m = IPE()
    out = m.set_params(sigma=0.4, n_samples=3)
    assert out is m
    assert m.sigma == 0.4 and m.n_samples == 3
    assert m.get_params()["sigma"] == 0.4
    assert m.noise == NoiseParams(sigma=0.4)
    with pytest.raises(ValueError):
        m.set_params(not_a_param=1)


def test_sklearn_clone_if_available():
    base = pytest.importorskip("sklearn.base")
    m = IPE(sigma=0.2, n_samples=4)
    c = base.clone(m)
    assert c.get_params() == m.get_params()


def test_noise_property_and_repr():
    m = IPE(sigma=0.1, phi=0.2, mu=0.3, angle_sigma=0.04, push_duration=0.5)
    assert m.noise == NoiseParams(sigma=0.1, phi=0.2, mu=0.3, angle_sigma=0.04, push_duration=0.5)
    assert repr(m).startswith("IPE(") and "sigma=0.1" in repr(m)


def test_ground_truth_is_noise_free_with_one_sample():
    gt = IPE.ground_truth()
    assert gt.n_samples == 1
    assert gt.noise.is_null
    assert IPE.ground_truth(seed=4, n_samples=3).get_params()["n_samples"] == 3


def test_bad_n_samples_raise_on_predict(demo):
    with pytest.raises(ipe.InputError):
        IPE(n_samples=0).predict(demo)
    with pytest.raises(ipe.InputError):
        IPE(backend="nope", n_samples=1).predict(demo)


# --------------------------------------------------------------------------- ground truth


def test_ground_truth_agrees_with_metadata_on_every_demo_tower(demo):
    """metadata['stable'] means count_fallen == 0 in the no-noise model."""
    pred = IPE.ground_truth().predict(demo, queries=["fall", "count_fallen"])
    assert len(pred) == 2 * len(demo)
    fall = pred[pred["query"] == "fall"].set_index("stimulus_id")
    count = pred[pred["query"] == "count_fallen"].set_index("stimulus_id")
    for s in demo:
        stable = s.metadata["stable"]
        assert (fall.loc[s.id, "mean"] > 0) == (not stable), s.id
        assert count.loc[s.id, "mean"] == s.metadata["n_fallen_no_noise"], s.id
        assert fall.loc[s.id, "mean"] == pytest.approx(s.metadata["n_fallen_no_noise"] / len(s.scene.bodies))
        assert fall.loc[s.id, "n_samples"] == 1


def test_zero_noise_many_samples_equals_ground_truth(demo):
    few = ipe.StimulusSet(stimuli=tuple(demo)[:4])
    gt = IPE.ground_truth().predict(few)
    many = IPE(n_samples=3, seed=8).predict(few)
    np.testing.assert_array_equal(gt["mean"], many["mean"])
    assert (many["sd"] == 0).all()


def test_demo_is_balanced_and_gt_stable_towers_have_zero_p_fall(demo):
    pred = IPE.ground_truth().predict(demo)
    stable = np.array([s.metadata["stable"] for s in demo])
    assert stable.sum() == len(demo) // 2
    assert (pred["mean"].to_numpy()[stable] == 0).all()
    assert (pred["mean"].to_numpy()[~stable] > 0).all()


# --------------------------------------------------------------------------- noise raises P(fall)


@pytest.fixture(scope="module")
def stable_towers(demo):
    return ipe.StimulusSet(stimuli=tuple(s for s in demo if s.metadata["stable"]))


@pytest.fixture(scope="module")
def p_fall_at_zero(stable_towers):
    return IPE(n_samples=N_SWEEP, seed=1).predict(stable_towers)["mean"].mean()


def test_p_fall_rises_with_sigma(stable_towers, p_fall_at_zero):
    means = [p_fall_at_zero] + [IPE(sigma=s, n_samples=N_SWEEP, seed=1).predict(stable_towers)["mean"].mean()
                                for s in (0.2, 0.4)]
    assert means[0] == 0.0  # no noise: the stable towers stand
    assert means[0] < means[1] < means[2], means


def test_p_fall_rises_with_phi(stable_towers, p_fall_at_zero):
    means = [p_fall_at_zero] + [IPE(phi=f, n_samples=N_SWEEP, seed=1).predict(stable_towers)["mean"].mean()
                                for f in (0.2, 0.4)]
    assert means[0] == 0.0
    assert means[0] < means[1] < means[2], means


# --------------------------------------------------------------------------- predict / simulate


def test_predict_columns_and_rows(demo):
    few = ipe.StimulusSet(stimuli=tuple(demo)[:3])
    m = IPE(sigma=0.2, phi=0.05, n_samples=4, seed=2)
    pred = m.predict(few)
    assert list(pred.columns) == SUMMARY_COLUMNS
    for c in ("stimulus_id", "query", "n_samples", "mean", "sd", "se"):
        assert c in pred.columns
    assert pred["stimulus_id"].tolist() == few.ids
    assert (pred["query"] == "fall").all()
    assert (pred["n_samples"] == 4).all()
    assert (pred["sigma"] == 0.2).all() and (pred["phi"] == 0.05).all()
    assert pred["mean"].between(0, 1).all()
    # predict is summarize(simulate)
    assert pred.equals(ipe.summarize(m.simulate(few)))
    # deterministic, and independent of the worker count
    assert pred.equals(m.predict(few))
    assert pred.equals(IPE(**{**m.get_params(), "workers": 2}).predict(few))


def test_predict_with_queries(demo):
    few = ipe.StimulusSet(stimuli=tuple(demo)[:2])
    pred = IPE(n_samples=1).predict(few, queries=["fall", "count_fallen"])
    assert pred["query"].tolist() == ["fall", "count_fallen"] * 2


def test_predict_accepts_a_single_stimulus_and_a_list(demo):
    one = IPE(n_samples=1).predict(demo[0])
    assert one["stimulus_id"].tolist() == [demo[0].id]
    two = IPE(n_samples=1).predict([demo[0], demo[1]])
    assert two["stimulus_id"].tolist() == [demo[0].id, demo[1].id]
