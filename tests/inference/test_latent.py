"""Mass inference through the simulator: the observer finds the heavier colour and learns across trials."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest

from ipe.cli import main
from ipe.errors import InputError
from ipe.inference.latent import MassInference, mass_variant_stimuli, materials, observe, true_log_ratio, with_ratio
from ipe.scenefile import save_stimuli


@pytest.fixture(scope="module")
def towers():
    return mass_variant_stimuli(3, seed=3)


def test_with_ratio_sets_the_density_ratio(towers):
    s = with_ratio(towers[0], math.log(4.0))
    assert true_log_ratio(s) == pytest.approx(math.log(4.0))
    assert materials(s) == ("heavy", "light")


def test_observer_finds_the_heavier_material(towers):
    est = MassInference(n_particles=60, n_sims=3, seed=0).fit(towers)
    a, b = est.materials_
    assert true_log_ratio(towers[0]) > 0  # 'heavy' is ten times denser
    assert est.summary_[f"p_{a}_heavier"] > 0.9
    assert est.summary_["heavier"] == "heavy"
    # the belief starts at the prior and moves with the evidence, trial by trial
    learning = est.learning_
    assert len(learning) == len(towers) + 1
    assert learning[f"p_{a}_heavier"].iloc[0] == pytest.approx(np.mean(est.particles_["log_ratio"] > 0))
    assert learning[f"p_{a}_heavier"].iloc[-1] > learning[f"p_{a}_heavier"].iloc[0]


def test_swapped_masses_flip_the_answer(towers):
    flipped = [with_ratio(s, -math.log(10.0)) for s in towers]
    est = MassInference(n_particles=60, n_sims=3, seed=0).fit(flipped)
    assert est.summary_["heavier"] == "light"


def test_reproducible(towers):
    a = MassInference(n_particles=20, n_sims=2, seed=4).fit(towers[:1])
    b = MassInference(n_particles=20, n_sims=2, seed=4).fit(towers[:1])
    pd.testing.assert_frame_equal(a.particles_, b.particles_)


def test_bad_input(towers, demo):
    with pytest.raises(InputError, match="exactly two materials"):
        MassInference(n_particles=5).fit(list(demo)[:1])
    with pytest.raises(InputError, match="n_particles"):
        MassInference(n_particles=0).fit(towers)
    obs = observe(towers[:1])
    with pytest.raises(InputError, match="lack column"):
        MassInference(n_particles=5).fit(towers[:1], obs.drop(columns=["dx"]))
    with pytest.raises(InputError, match="unknown stimulus"):
        MassInference(n_particles=5).fit(towers[:1], obs.assign(stimulus_id="zzz"))


def test_cli_infer_mass(towers, tmp_path, capsys):
    path = save_stimuli(towers[:2], tmp_path / "mass.json")
    rc = main(["infer", "mass", str(path), "--particles", "20", "--sims", "2", "--out", str(tmp_path / "o")])
    assert rc == 0
    for name in ("posterior.csv", "learning.csv", "summary.json", "learning.png"):
        assert (tmp_path / "o" / name).exists()
    capsys.readouterr()
    rc = main(["infer", "mass", str(path), "--observations", str(tmp_path / "missing.csv"), "--out",
               str(tmp_path / "o2")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("ipe: error:")


def test_observation_tables_are_checked_row_by_row():
    """Text for a displacement, a body the tower lacks, a body twice: each a one-line InputError naming it."""
    import pandas as pd

    from ipe.errors import InputError
    from ipe.inference.latent import MassInference

    import ipe

    stim = ipe.generate_towers(2, seed=3, n_blocks=3, mass_variants=True)[0]
    ids = list(stim.scene.body_ids)
    good = pd.DataFrame({"stimulus_id": stim.id, "body": ids, "dx": 0.0, "dy": 0.0})
    mi = MassInference()
    assert len(mi._observed_arrays([stim], good)) == 1
    for change, message in (
            (lambda d: d.assign(dx=["abc"] + [0.0] * (len(ids) - 1)), "dx and dy must be numbers"),
            (lambda d: d.assign(body=["b99"] + ids[1:]), "has no body 'b99'"),
            (lambda d: pd.concat([d, d.iloc[:1]]), f"body {ids[0]!r} has more than one row")):
        with pytest.raises(InputError, match=re.escape(message)):
            mi._observed_arrays([stim], change(good.copy()))


@pytest.mark.parametrize("option,value,message", [
    ("n_sims", 0, "n_sims must be a positive integer, got 0"),
    ("kernel_width", 0.0, "kernel_width must be a finite number > 0, got 0.0"),
    ("max_ratio", 1.0, "max_ratio must be a finite number > 1, got 1.0"),
    ("sigma", -0.1, "sigma must be a finite number >= 0, got -0.1"),
    ("seed", -1, "seed must be a non-negative integer, got -1"),
])
def test_options_break_their_rule_with_one_message(option, value, message):
    with pytest.raises(InputError) as err:
        MassInference(**{option: value}).fit([])
    assert str(err.value) == message
