import math

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.queries import QUERIES, check_query, evaluate, parse_query
from ipe.scene import Block, Query, Scene, StaticBox, Stimulus
from ipe.rollout import RolloutResult


@pytest.fixture
def setup():
    bodies = tuple(Block(id=f"b{i}", position=(0.0, 0.05 + 0.1 * i), width=0.3, height=0.1,
                         label="red" if i % 2 else "blue") for i in range(4))
    table = StaticBox(id="table", position=(0.0, -0.05), width=1.0, height=0.1)
    scene = Scene(bodies=bodies, statics=(table,))
    s = Stimulus(id="s", scene=scene)
    initial = np.array([(b.position[0], b.position[1], 0.0) for b in bodies])
    final = initial.copy()
    final[2] = (0.40, -0.20, 1.0)   # fell right, off the table below its top
    final[3] = (-0.70, 0.06, 0.0)   # fell left, beyond the table's left edge (x < -0.5)
    final[1, 1] -= 0.005            # settled 5 mm: under the 7.5 mm threshold
    r = RolloutResult(body_ids=scene.body_ids, initial=initial, final=final, removed=np.zeros(4, bool),
                      steps=100, n_steps=480)
    return s, r


def q(name, **kw):
    return Query(name, kw)


def test_fall_queries(setup):
    s, r = setup
    assert evaluate(q("fall"), r, s) == 0.5
    assert evaluate(q("count_fallen"), r, s) == 2
    assert evaluate(q("count_fallen", threshold=0.001), r, s) == 3
    assert evaluate(q("body_falls", body="b2"), r, s) == 1
    assert evaluate(q("body_falls", body="b1"), r, s) == 0
    assert evaluate(q("count_fallen", label="red"), r, s) == 1
    assert evaluate(q("fall", bodies=["b0", "b3"]), r, s) == 0.5


def test_direction_queries(setup):
    s, r = setup
    assert evaluate(q("direction"), r, s) == pytest.approx((0.40 - 0.70) / 2)
    assert evaluate(q("falls_left"), r, s) == 1.0
    assert evaluate(q("falls_left", bodies=["b2"]), r, s) == 0.0
    assert math.isnan(evaluate(q("falls_left", bodies=["b0"]), r, s))
    assert evaluate(q("direction", bodies=["b0"]), r, s) == 0.0


def test_distance_and_off_table(setup):
    s, r = setup
    d2 = math.hypot(0.40, -0.20 - 0.25)
    d3 = math.hypot(-0.70, 0.06 - 0.35)
    assert evaluate(q("distance"), r, s) == pytest.approx((0.005 + d2 + d3) / 4)
    assert evaluate(q("off_table", support="table"), r, s) == 2
    assert evaluate(q("off_table", support="table", bodies=["b3"]), r, s) == 1
    assert evaluate(q("off_table", support="table", label="blue"), r, s) == 1


def test_removed_bodies_are_not_counted(setup):
    s, r = setup
    r.removed[2] = True
    assert evaluate(q("count_fallen"), r, s) == 1
    assert evaluate(q("fall"), r, s) == pytest.approx(1 / 3)
    assert math.isnan(evaluate(q("body_falls", body="b2"), r, s))


def test_every_query_is_documented():
    for spec in QUERIES.values():
        assert spec.doc and spec.unit


@pytest.mark.parametrize("bad, msg", [
    (q("nope"), "unknown query"),
    (q("fall", colour="red"), "no parameter"),
    (q("body_falls"), "needs parameter 'body'"),
    (q("fall", threshold=-1), "threshold"),
    (q("off_table", support=3), "support"),
    (q("fall", threshold=True), r"^threshold must be a finite number > 0 or None, got True$"),
    (q("fall", threshold=float("nan")), r"^threshold must be a finite number > 0 or None, got nan$"),
    (q("landing_x", body="b0", level="low"), r"^level must be a finite height \(m\) or None, got 'low'$"),
    (q("fall", bodies=3), r"^bodies must be a list of body ids or None, got 3$"),
    (q("first_contact", body="b0", target="t", among=["a", 2]), r"^among must be a list of shape ids or None, got \['a', 2\]$"),
    (q("body_falls", body=None), r"^body must be a string, got None$"),
])
def test_bad_queries(bad, msg):
    with pytest.raises(InputError, match=msg):
        check_query(bad)


def test_parse_query_text():
    assert parse_query("body_falls:body=b3").params == {"body": "b3"}
    assert parse_query("fall:threshold=0.01").params == {"threshold": 0.01}
    assert parse_query("count_fallen:bodies=b1+b2").params == {"bodies": ["b1", "b2"]}
    assert parse_query("body_falls:body=b3").key == "body_falls(body=b3)"
    with pytest.raises(InputError):
        parse_query("fall:threshold")


def test_a_query_has_one_key_however_it_is_written():
    from ipe.queries import parse_query
    from ipe.scene import Query

    assert Query("count_fallen", {"threshold": 1}).key == parse_query("count_fallen:threshold=1").key
    assert Query("count_fallen", {"threshold": 1}).key == "count_fallen(threshold=1.0)"
    from ipe.queries import check_query

    check_query(Query("fall", {"bodies": ("b0", "b1")}))  # a tuple is a list of bodies too


def test_a_query_names_only_what_is_in_the_scene(setup):
    scene = setup[0].scene
    with pytest.raises(InputError, match="^unknown body 'zz'$"):
        check_query(q("count_fallen", bodies=["b0", "zz"]), scene)
    with pytest.raises(InputError, match="^unknown target 'zz': no static shape or body has this id$"):
        check_query(q("landing_x", body="b0", target="zz"), scene)
    with pytest.raises(InputError, match="^unknown shape 'zz' in 'among'$"):
        check_query(q("first_contact", body="b0", target="table", among="zz"), scene)
    check_query(q("first_contact", body="b0", target="table", among=["table"]), scene)
