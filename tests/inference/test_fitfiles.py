"""The files of a fit (ipe.inference.fitfiles): parameters read back from any fit command's params.json."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ipe.cli import main
from ipe.errors import InputError
from ipe.inference import load_params


def test_fit_landing_params_go_straight_to_predict(tmp_path):
    from ipe.inference.landing import synthesize_landings
    from ipe.noise import NoiseParams
    from ipe.scenefile import load_stimuli

    sp = tmp_path / "p.json"
    assert main(["stimuli", "plinko", "--n", "2", "--seed", "8", "--out", str(sp)]) == 0
    clicks = synthesize_landings(load_stimuli(sp), 4, NoiseParams(launch_position=0.2), motor_sd=5.0, seed=1)
    clicks.to_csv(tmp_path / "clicks.csv", index=False)
    fit = tmp_path / "fit"
    assert main(["fit-landing", str(tmp_path / "clicks.csv"), "--stimuli", str(sp), "--out", str(fit), "--free",
                 "launch_position", "--grid-points", "3", "--grid-max", "0.4", "--emulator-samples", "3",
                 "--warmup", "10", "--draws", "10", "--chains", "1", "--no-progress"]) == 0
    assert main(["predict", str(sp), "--params", str(fit / "params.json"), "--samples", "2", "--no-progress",
                 "--out", str(tmp_path / "pred.csv")]) == 0
    fitted = json.loads((fit / "params.json").read_text())["params"]["launch_position"]
    assert load_params(fit / "params.json") == {"launch_position": fitted}
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 2
    (tmp_path / "bad.json").write_text(json.dumps({"params": {"gravity": 1.0}, "free": ["gravity"]}))
    with pytest.raises(InputError, match="unknown parameter 'gravity'"):
        load_params(tmp_path / "bad.json")
