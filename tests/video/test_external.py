"""Judgments of external video models (ipe.video.external): picking one model from a shared table."""

from __future__ import annotations

import pandas as pd
import pytest

from ipe.errors import InputError
from ipe.video.external import import_judgments


def test_import_judgments_picks_a_model(tmp_path, demo):
    df = pd.DataFrame({"stimulus_id": ["tower_000", "tower_000"], "model": ["a", "b"], "sample": [0, 0],
                       "judgment": [0.0, 1.0]})
    df.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(InputError, match="pick one with --model"):
        import_judgments(tmp_path / "two.csv", demo)
    assert import_judgments(tmp_path / "two.csv", demo, model="b")["mean"].tolist() == [1.0]
