"""scikit-learn's estimator rules for ipe's models and fitters: __init__ stores, get/set_params, an honest repr."""

from __future__ import annotations

import inspect

import pytest

import ipe
from ipe.errors import InputError
from ipe.inference import Emulator, HierarchicalFit
from ipe.inference.landing import LandingEmulator, LandingFit
from ipe.inference.latent import MassInference

# one non-default value per class for a few parameters, to see that __init__ stores them untouched
CASES = [
    (ipe.IPE, {"sigma": 0.3, "angle_sigma": 0.1, "push_duration": 0.5, "early_stop": False}),
    (Emulator, {"grid": {"sigma": [0.0, 0.5]}, "free": ("sigma",), "n_samples": 7}),
    (HierarchicalFit, {"free": ["sigma"], "num_warmup": 11, "link": "power"}),
    (LandingEmulator, {"grid": {"launch_position": [0.0, 0.4]}, "n_samples": 5}),
    (LandingFit, {"free": ["launch_position"], "num_chains": 1}),
    (MassInference, {"sigma": 0.2, "n_particles": 50}),
]


@pytest.mark.parametrize("cls, kwargs", CASES, ids=[c.__name__ for c, _ in CASES])
def test_init_stores_its_arguments_and_params_round_trip(cls, kwargs):
    obj = cls(**kwargs)
    names = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    params = obj.get_params()
    assert list(params) == names
    for k, v in kwargs.items():
        assert params[k] is v  # stored as given, not copied or converted
    other = cls(**{k: v for k, v in params.items()})
    assert other.get_params() == params and repr(other) == repr(obj)
    # set_params returns the object and changes what repr shows
    sig = inspect.signature(cls.__init__).parameters
    required = {k: v for k, v in kwargs.items() if sig[k].default is inspect.Parameter.empty}
    assert repr(cls(**required)) != repr(obj)
    first = names[0]
    assert obj.set_params(**{first: params[first]}) is obj


def test_repr_shows_every_changed_argument():
    assert repr(ipe.IPE()) == "IPE()"
    assert repr(ipe.IPE(angle_sigma=0.2, push_duration=0.5)) == "IPE(angle_sigma=0.2, push_duration=0.5)"
    assert repr(ipe.IPE(angle_sigma=0.2)) != repr(ipe.IPE(push_duration=0.3))
    assert "num_warmup=5" in repr(HierarchicalFit(num_warmup=5))


@pytest.mark.parametrize("cls", [c for c, _ in CASES], ids=[c.__name__ for c, _ in CASES])
def test_set_params_refuses_unknown_names_in_one_line(cls):
    kwargs = dict(CASES)[cls]
    with pytest.raises(InputError, match=r"unknown parameter 'sgima' for .*; expected one of"):
        cls(**kwargs).set_params(sgima=1)
