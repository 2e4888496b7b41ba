"""Seeds: named streams, one helper, no shared keys."""
import re
from pathlib import Path

import numpy as np
import pytest

from ipe.seeding import LEGACY_KEYS, sample_seed, source_rng, stream_int, stream_rng, stream_seed, text_key


def test_named_streams_are_reproducible_and_distinct():
    a = stream_rng(3, "ipe.test:a").random(4)
    assert np.array_equal(a, stream_rng(3, "ipe.test:a").random(4))
    assert not np.array_equal(a, stream_rng(3, "ipe.test:b").random(4))
    assert not np.array_equal(a, stream_rng(4, "ipe.test:a").random(4))
    assert not np.array_equal(stream_rng(3, "x", 1).random(2), stream_rng(3, "x", 2).random(2))
    assert stream_seed(3, "x", "p1").spawn_key == (text_key("x"), text_key("p1"))


def test_legacy_keys_are_unique_and_never_collide_with_text_keys():
    values = list(LEGACY_KEYS.values())
    assert len(values) == len(set(values))
    assert stream_seed(0, "fit.svi").spawn_key == (LEGACY_KEYS["fit.svi"],) == (3,)
    # a legacy key is a small integer; text keys are 64-bit hashes
    assert all(0 < v < 1000 for v in values)


def test_stream_int_matches_the_first_state_word():
    ss = np.random.SeedSequence(7, spawn_key=(3,))
    assert stream_int(7, "fit.svi") == int(ss.generate_state(1)[0])
    assert 0 <= stream_int(7, "x", bits=63) < 2 ** 63
    with pytest.raises(ValueError):
        stream_int(7, "x", bits=0)


def test_rollout_streams_are_keyed_by_stimulus_point_and_sample():
    ss = sample_seed(1, "s", 2, 3)
    assert ss.spawn_key == (text_key("s"), 2, 3)
    assert source_rng(ss, "sigma").random() != source_rng(ss, "phi").random()


def test_no_module_builds_its_own_seed_sequence():
    """Every random stream comes from ipe.seeding: nobody else calls SeedSequence(...)."""
    root = Path(__file__).resolve().parents[1] / "ipe"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "seeding.py":
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#")[0]
            if re.search(r"\bSeedSequence\(", code) and not code.strip().startswith(("``", ":")):
                offenders.append(f"{path.relative_to(root)}:{i}")
    assert not offenders, f"SeedSequence built outside ipe.seeding: {offenders}"
