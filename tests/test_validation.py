"""The declared input rules: one template, bools never numbers, canonical values back."""
import math

import numpy as np
import pytest

from ipe.errors import InputError
from ipe.validation import (BOOL, FRACTION, NONNEG_NUMBER, POSITIVE_INT, SEED, Integer, Number, OneOf, Optional,
                            Text, check, validate_params)


@pytest.mark.parametrize("rule, value, message", [
    (POSITIVE_INT, 0, "n must be a positive integer, got 0"),
    (POSITIVE_INT, True, "n must be a positive integer, got True"),
    (POSITIVE_INT, 2.0, "n must be a positive integer, got 2.0"),
    (POSITIVE_INT, np.int64(0), "n must be a positive integer, got 0"),
    (SEED, -1, "n must be a non-negative integer, got -1"),
    (NONNEG_NUMBER, -1.0, "n must be a finite number >= 0, got -1.0"),
    (NONNEG_NUMBER, math.nan, "n must be a finite number >= 0, got nan"),
    (NONNEG_NUMBER, math.inf, "n must be a finite number >= 0, got inf"),
    (NONNEG_NUMBER, "1", "n must be a finite number >= 0, got '1'"),
    (FRACTION, 1.5, "n must be a finite number in [0, 1], got 1.5"),
    (Number(0, 1, closed="neither"), 0.0, "n must be a finite number in (0, 1), got 0.0"),
    (Integer(3, 9), 10, "n must be an integer in [3, 9], got 10"),
    (OneOf("a", "b"), "c", "n must be one of 'a', 'b', got 'c'"),
    (OneOf("a"), ["a"], "n must be one of 'a', got ['a']"),
    (Text(r"[a-z]+"), "abc\n", "n must be text matching [a-z]+, got 'abc\\n'"),
    (Optional(POSITIVE_INT), 0, "n must be a positive integer or None, got 0"),
    (BOOL, 1, "n must be True or False, got 1"),
])
def test_every_rule_breaks_with_the_one_template(rule, value, message):
    with pytest.raises(InputError) as exc:
        check("n", value, rule)
    assert str(exc.value) == message


@pytest.mark.parametrize("rule, value, expected", [
    (POSITIVE_INT, np.int64(3), 3), (NONNEG_NUMBER, 2, 2.0), (FRACTION, np.float32(0.5), 0.5),
    (Optional(POSITIVE_INT), None, None), (BOOL, np.bool_(True), True), (Text(), "x", "x"),
])
def test_accepted_values_come_back_in_canonical_types(rule, value, expected):
    out = check("n", value, rule)
    assert out == expected and type(out) is type(expected)


def test_validate_params_checks_named_arguments_on_every_call():
    @validate_params(n=POSITIVE_INT, rate=NONNEG_NUMBER)
    def f(x, n=1, rate=0.0):
        return x, n, rate

    assert f("a", np.int64(2), rate=1) == ("a", 2, 1.0)
    assert type(f("a", np.int64(2))[1]) is int
    with pytest.raises(InputError, match=r"^rate must be a finite number >= 0, got -1$"):
        f("a", rate=-1)
    assert f.__ipe_rules__ == {"n": POSITIVE_INT, "rate": NONNEG_NUMBER}
    with pytest.raises(TypeError, match="no argument"):
        validate_params(nope=POSITIVE_INT)(lambda x: x)
