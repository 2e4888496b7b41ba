"""BHT-style tower generation: deterministic, well-formed, and the options do what they say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ipe
from ipe.datasets import DEMO_N, DEMO_SEED, demo_path, make_demo
from ipe.scene import Block
from ipe.scenefile import stimulus_set_to_dict
from ipe.stimuli.towers import (
    BLOCK_LONG,
    BLOCK_SHORT,
    HEAVY_COLOR,
    HEAVY_DENSITY,
    LIGHT_COLOR,
    LIGHT_DENSITY,
    no_noise_fallen,
    tower_height,
)
from ipe.geometry import find_overlaps

REPO = Path(__file__).resolve().parents[2]


def _text(stimuli, tmp_path: Path, name: str) -> str:
    """The exact text ``save_stimuli`` writes for ``stimuli``."""
    p = tmp_path / name
    ipe.save_stimuli(stimuli, p)
    return p.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def towers():
    return ipe.generate_towers(6, seed=7)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_set_byte_for_byte(towers, tmp_path):
    again = ipe.generate_towers(6, seed=7)
    assert again == towers
    assert _text(again, tmp_path, "a.json") == _text(towers, tmp_path, "b.json")


def test_different_seeds_differ(towers, tmp_path):
    other = ipe.generate_towers(6, seed=8)
    assert [s.scene for s in other] != [s.scene for s in towers]
    assert _text(other, tmp_path, "a.json") != _text(towers, tmp_path, "b.json")


def test_a_set_is_a_prefix_of_a_larger_one_with_the_same_seed(towers):
    """Without balancing, towers are drawn in order: the first n are the same for any larger n."""
    small = ipe.generate_towers(3, seed=7)
    assert [s.scene for s in small] == [s.scene for s in towers][:3]


def test_bundled_demo_file_is_reproducible(tmp_path):
    path = demo_path()
    assert path is not None and path == REPO / "data" / "demo_towers.json"
    rebuilt = make_demo()
    assert len(rebuilt) == DEMO_N
    assert rebuilt.metadata["seed"] == DEMO_SEED
    assert _text(rebuilt, tmp_path, "demo.json") == path.read_text(encoding="utf-8")
    # and the loaded file equals the rebuilt set as data too
    assert stimulus_set_to_dict(ipe.load_demo()) == json.loads(path.read_text(encoding="utf-8"))


def test_cli_recipe_for_the_demo_matches_make_demo():
    """The datasets docstring says the demo is ``--n 12 --balanced --seed 2013``."""
    assert ipe.generate_towers(12, seed=2013, balanced=True) == make_demo()


# --------------------------------------------------------------------------- structure


def test_ids_query_and_metadata(towers):
    assert towers.ids == [f"tower_{i:03d}" for i in range(6)]
    for s in towers:
        assert s.query == ipe.Query("fall")
        m = s.metadata
        for key in ("stable", "n_fallen_no_noise", "height"):
            assert key in m, key
        assert isinstance(m["stable"], bool)
        assert m["stable"] == (m["n_fallen_no_noise"] == 0)
        assert m["n_fallen_no_noise"] == no_noise_fallen(s.scene)
        assert m["height"] == pytest.approx(tower_height(s.scene), abs=1e-9)
        assert m["n_blocks"] == len(s.scene.bodies) == 10
        assert m["seed"] == 7
    assert towers.metadata["seed"] == 7
    assert towers.metadata["n_blocks"] == 10
    assert towers.name == "bht_towers"


@pytest.mark.parametrize("n_blocks", [1, 3, 7])
def test_n_blocks_respected(n_blocks):
    st = ipe.generate_towers(3, seed=1, n_blocks=n_blocks)
    assert len(st) == 3
    for s in st:
        assert len(s.scene.bodies) == n_blocks
        assert s.metadata["n_blocks"] == n_blocks


def test_blocks_are_3_to_1_and_rest_on_something(towers):
    for s in towers:
        for b in s.scene.bodies:
            assert isinstance(b, Block)
            assert sorted((b.width, b.height)) == pytest.approx([BLOCK_SHORT, BLOCK_LONG])
            assert b.position[1] - b.height / 2 >= -1e-9  # nothing below the ground's top
        bottoms = [b.position[1] - b.height / 2 for b in s.scene.bodies]
        assert min(bottoms) == pytest.approx(0.0, abs=1e-9)  # the first block stands on the ground


def test_blocks_do_not_overlap():
    for st in (ipe.generate_towers(6, seed=7), ipe.generate_towers(4, seed=3, mass_variants=True),
               ipe.load_demo()):
        for s in st:
            assert find_overlaps(s.scene) == [], s.id


def test_generated_sets_survive_a_save_load_round_trip(towers, tmp_path):
    p = tmp_path / "t.json"
    ipe.save_stimuli(towers, p)
    assert ipe.load_stimuli(p) == towers


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("n,seed", [(4, 0), (6, 5), (8, 11)])
def test_balanced_sets_have_equal_stable_and_falling(n, seed):
    st = ipe.generate_towers(n, seed=seed, balanced=True)
    stable = [s.metadata["stable"] for s in st]
    assert len(st) == n
    assert sum(stable) == n // 2
    assert st.metadata["balanced"] is True
    assert st.name == "bht_towers_balanced"


def test_same_height_gives_equal_heights():
    st = ipe.generate_towers(5, seed=3, same_height=True)
    heights = {round(tower_height(s.scene), 6) for s in st}
    assert len(heights) == 1
    assert len({s.metadata["height"] for s in st}) == 1


def test_same_height_with_a_number():
    st = ipe.generate_towers(3, seed=3, same_height=0.6)
    for s in st:
        assert tower_height(s.scene) == pytest.approx(0.6, abs=1e-6)
        assert s.metadata["height"] == pytest.approx(0.6, abs=1e-6)
    assert st.metadata["same_height"] == 0.6


def test_mass_variants_have_two_materials_and_colours():
    st = ipe.generate_towers(4, seed=7, mass_variants=True)
    assert st.ids == ["tower_000_a", "tower_000_b", "tower_001_a", "tower_001_b"]
    assert st.name == "bht_towers_mass"
    for s in st:
        mats = {b.material for b in s.scene.bodies}
        colors = {b.color for b in s.scene.bodies}
        assert mats == {"heavy", "light"}
        assert colors == {HEAVY_COLOR, LIGHT_COLOR}
        for b in s.scene.bodies:
            if b.material == "heavy":
                assert b.density == HEAVY_DENSITY and b.color == HEAVY_COLOR
            else:
                assert b.density == LIGHT_DENSITY and b.color == LIGHT_COLOR
        assert sum(b.material == "heavy" for b in s.scene.bodies) == len(s.scene.bodies) // 2
        assert s.metadata["mass_variant"] == s.id[-1]
        assert s.metadata["pair"] == s.id[:-2]
    # the two variants of a tower: same geometry, masses swapped
    for a, b in ((st[0], st[1]), (st[2], st[3])):
        assert [x.position for x in a.scene.bodies] == [x.position for x in b.scene.bodies]
        assert all(x.material != y.material for x, y in zip(a.scene.bodies, b.scene.bodies))


def test_balanced_mass_variants_differ_in_outcome():
    st = ipe.generate_towers(4, seed=7, mass_variants=True, balanced=True)
    for a, b in ((st[0], st[1]), (st[2], st[3])):
        assert a.metadata["stable"] != b.metadata["stable"]


def test_query_option():
    st = ipe.generate_towers(2, seed=1, query="count_fallen")
    assert all(s.query == ipe.Query("count_fallen") for s in st)


@pytest.mark.parametrize("kwargs", [
    dict(n=0),
    dict(n=-1),
    dict(n=2, n_blocks=0),
    dict(n=3, mass_variants=True),
    dict(n=2, mass_variants=True, n_blocks=1),
    dict(n=3, balanced=True),
    dict(n=2, seed=-1),
    dict(n=2, query="no_such_query"),
])
def test_bad_options_raise_input_error(kwargs):
    with pytest.raises(ipe.InputError):
        ipe.generate_towers(**kwargs)
