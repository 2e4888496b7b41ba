"""The Physion-style probe on the slot model's frozen features."""

from __future__ import annotations

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.stimuli.towers import generate_towers
from ipe.video.probe import probe_study, slot_features
from ipe.video.slots import SlotConfig, train_slot_model


def test_probe_reads_the_slot_models_frozen_features():
    train, test = generate_towers(6, seed=11, balanced=True), generate_towers(4, seed=12, balanced=True)
    model, _ = train_slot_model(SlotConfig(samples=1, epochs=1, hidden=8, seed=2), train_stimuli=list(train)[:2],
                                threads=1)
    X = slot_features(model, list(test))
    assert X.shape == (4, 16) and np.isfinite(X).all()
    # the features are the model's own: another model gives others
    other, _ = train_slot_model(SlotConfig(samples=1, epochs=1, hidden=8, seed=3), train_stimuli=list(train)[:2],
                                threads=1)
    assert not np.allclose(X, slot_features(other, list(test)))
    res = probe_study("slots", model, train, test)
    assert res["n_features"] == 16 and res["n_train"] == 6 and res["n_test"] == 4
    assert res == probe_study("slots", model, train, test)
    with pytest.raises(InputError, match="expected video, slots or cnn"):
        probe_study("rnn", model, train, test)
