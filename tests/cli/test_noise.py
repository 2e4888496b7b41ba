"""Noise options: every one is checked with the noise parameters' one rule, under the option's own name."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipe.cli import main
from ipe.cli.noise import NOISE_RULE, check_noise, noise_point, option_name, parse_noise_options
from ipe.errors import InputError
from ipe.noise import NoiseParams
from ipe.validation import NONNEG_NUMBER

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo_towers.json"
RULE_TEXT = "must be a finite number >= 0, got"


def test_the_noise_rule_is_the_declared_one_and_names_the_option():
    assert NOISE_RULE is NONNEG_NUMBER
    assert check_noise({"sigma": 0.2, "launch_angle": 1}) == {"sigma": 0.2, "launch_angle": 1.0}
    with pytest.raises(InputError, match=r"^--launch-angle must be a finite number >= 0, got -1\.0$"):
        noise_point(sigma=0.1, launch_angle=-1.0)
    with pytest.raises(InputError, match=r"^--noise sigma must be a finite number >= 0, got inf$"):
        check_noise({"sigma": float("inf")}, {"sigma": "--noise sigma"})
    assert noise_point(sigma=0.1, drop_angle=0.3) == NoiseParams(sigma=0.1, drop_angle=0.3)
    assert option_name("collision_speed_sd") == "--collision-speed-sd"
    assert parse_noise_options(["collision-angle=0.1"]) == {"collision_angle": 0.1}


@pytest.mark.parametrize("argv, option", [
    (["predict", str(DEMO), "--sigma", "-1"], "--sigma"),
    (["predict", str(DEMO), "--phi", "nan"], "--phi"),
    (["predict", str(DEMO), "--angle-sigma", "-0.5"], "--angle-sigma"),
    (["predict", str(DEMO), "--noise", "drop_angle=-2"], "--noise drop_angle"),
    (["demo", "--sigma", "-1"], "--sigma"),
    (["render", str(DEMO), "--video", "--phi", "-1"], "--phi"),
    (["infer", "mass", str(DEMO), "--sigma", "-1"], "--sigma"),
    (["plot", "trajectories", str(DEMO), "--step-angle", "-1"], "--step-angle"),
    (["compare", "--stimuli", str(DEMO), "--humans", str(DEMO), "--sigma", "-1"], "--sigma"),
])
def test_a_negative_noise_option_is_one_line_that_names_it(argv, option, tmp_path, capsys):
    """One line, exit 2, the option's name and the rule's words (demo, render, infer mass used to give the
    inner layer's "noise parameter sigma must be >= 0"); nothing is simulated or written."""
    out = tmp_path / "out"
    assert main([*argv, "--out", str(out / "x.csv") if argv[0] == "predict" else str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"ipe: error: {option} {RULE_TEXT} "), err
    assert not out.exists()
