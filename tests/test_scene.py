"""The scene dataclasses: derived sizes, and the invariants each checks when it is made."""

import math
import re
from dataclasses import replace

import pytest

from ipe.errors import InputError
from ipe.scene import (
    Ball,
    Block,
    FieldError,
    Intervention,
    Scene,
    Simulation,
    StaticBox,
    StaticPolygon,
    StaticRegularPolygon,
    StaticSegment,
    Stimulus,
)


def test_simulation_steps():
    sim = Simulation(time_step=1 / 60, substeps=4, horizon=2.0)
    assert sim.dt == pytest.approx(1 / 240)
    assert sim.n_steps == 480


def test_masses_and_sizes():
    b = Block(id="a", position=(0, 0), width=0.3, height=0.1, density=10.0)
    assert b.effective_mass == pytest.approx(0.3)
    b2 = Block(id="a", position=(0, 0), width=0.3, height=0.1, mass=2.0)
    assert b2.effective_density == pytest.approx(2.0 / 0.03)
    ball = Ball(id="c", position=(0, 0), radius=0.5)
    assert ball.area == pytest.approx(math.pi * 0.25)
    assert ball.short_side == 1.0


def test_regular_polygon_vertices():
    p = StaticRegularPolygon(id="p", sides=4, radius=2.0, position=(1.0, 1.0))
    v = p.local_vertices()
    assert v[0] == pytest.approx((2.0, 0.0))
    assert v[1] == pytest.approx((0.0, 2.0), abs=1e-12)


BLOCK = dict(id="b0", position=(0.0, 0.05), width=0.3, height=0.1)


@pytest.mark.parametrize("change, message", [
    ({"width": -0.3}, "Block 'b0': width: must be > 0, got -0.3"),
    ({"width": -1}, "Block 'b0': width: must be > 0, got -1.0"),
    ({"height": 1e5}, "Block 'b0': height: must be within 0.0001..10000 m, got 100000"),
    ({"density": -1.0}, "Block 'b0': density: must be > 0, got -1.0"),
    ({"mass": 0.0}, "Block 'b0': mass: must be > 0, got 0.0"),
    ({"position": (float("nan"), 0.05)}, "Block 'b0': position[0]: must be finite, got nan"),
    ({"position": (0.0, 2e4)}, "Block 'b0': position[1]: must be within -10000..10000, got 20000"),
    ({"position": (0.0, 1.0, 2.0)}, "Block 'b0': position: must be a pair [x, y], got 3 values"),
    ({"angle": True}, "Block 'b0': angle: must be a number, got a boolean"),
    ({"width": "wide"}, "Block 'b0': width: must be a number, got a string"),
    ({"id": "bad id/x"}, "Block 'bad id/x': id: invalid value 'bad id/x'"),
    ({"id": "b0\n"}, "Block 'b0\\n': id: invalid value 'b0\\n'"),
    ({"color": "red"}, "Block 'b0': color: colour must look like '#rrggbb', got 'red'"),
    ({"density": 1.0, "mass": 1.0}, "Block 'b0': give either 'density' or 'mass', not both"),
    ({"corner_radius": 0.05}, "Block 'b0': corner_radius: must be less than half the shorter side, got 0.05"),
    ({"skin": -0.01}, "Block 'b0': skin: must be >= 0, got -0.01"),
])
def test_a_bad_block_cannot_be_made(change, message):
    with pytest.raises(FieldError, match=re.escape(message) + "$"):
        Block(**(BLOCK | change))


def test_a_perturbed_copy_is_checked_too():
    """Noise sources copy bodies with dataclasses.replace: the copy runs the same checks."""
    b = Block(**BLOCK)
    assert replace(b, position=(0.1, 0.05), angle=0.2).position == (0.1, 0.05)
    with pytest.raises(InputError, match=r"position\[1\]: must be finite, got nan"):
        replace(b, position=(0.1, float("nan")))


@pytest.mark.parametrize("make, message", [
    (lambda: Ball(id="c", position=(0, 0), radius=0.0), "Ball 'c': radius: must be > 0, got 0.0"),
    (lambda: StaticBox(id="g", position=(0, 0), width=1, height=0.1, friction=-1),
     "StaticBox 'g': friction: must be >= 0, got -1.0"),
    (lambda: StaticPolygon(id="p", vertices=((0, 0), (1, 0))),
     "StaticPolygon 'p': vertices: must be a list of at least 3 [x, y] points"),
    (lambda: StaticPolygon(id="p", vertices=((0, 0), (1, 0), (0, 1), (1, 1))),
     "StaticPolygon 'p': vertices: polygon is not convex"),
    (lambda: StaticRegularPolygon(id="p", sides=2, radius=1.0), "StaticRegularPolygon 'p': sides: must be >= 3, got 2"),
    (lambda: StaticSegment(id="s", a=(0, 0), b=(0, 0)),
     "StaticSegment 's': segment end points 'a' and 'b' are the same point"),
    (lambda: Simulation(substeps=2.5), "Simulation: substeps: must be an integer, got 2.5"),
    (lambda: Simulation(damping=2.0),
     "Simulation: damping: must be in (0, 1] (fraction of velocity kept per second), got 2.0"),
    (lambda: Simulation(horizon=1e-4), "Simulation: horizon is shorter than one physics step"),
    (lambda: Scene(bodies=(), gravity=(0.0, float("inf"))), "Scene: gravity[1]: must be finite, got inf"),
    (lambda: Intervention("remove", 0.5), "Intervention: a 'remove' intervention needs 'bodies'"),
    (lambda: Intervention("push", 0.5, ("a",)), "Intervention: type: unknown value 'push'; expected one of remove, impulse"),
    (lambda: Stimulus(id="s s", scene=Scene(bodies=(Block(**BLOCK),))), "Stimulus 's s': id: invalid value 's s'"),
    (lambda: Stimulus(id="s", scene=Scene(bodies=(Block(**BLOCK),)), metadata=[1]),
     "Stimulus 's': metadata: must be an object, got an array"),
])
def test_every_dataclass_checks_its_fields(make, message):
    with pytest.raises(FieldError, match=re.escape(message) + "$"):
        make()


def test_a_field_error_can_be_located_in_a_file():
    with pytest.raises(FieldError) as err:
        Block(**(BLOCK | {"position": (0.0, float("nan"))}))
    assert str(err.value.at("scene.bodies[2]")) == "scene.bodies[2].position[1]: must be finite, got nan"
    with pytest.raises(FieldError) as err:
        Simulation(collision_bias=1.5)
    assert str(err.value.at("scene.simulation")) == ("scene.simulation: collision_bias: must be in (0, 1] (fraction "
                                                      "of an overlap left after one second), got 1.5")


TRICKY = [0.0, -0.0, 1e-5, 0.3, -1.0, 1e4, 1e4 + 1, 2e4, 1e300, float("nan"), float("inf"), -float("inf"), 1, True,
          None, "x", "#00ff00", "b0", (0.0, 0.0), (1e4, -1e4), (1e4 + 1, 0.0), (float("nan"), 0.0), [0.0, 0.0], (0.0,)]


@pytest.mark.parametrize("cls, base", [(Block, BLOCK), (Ball, dict(id="c", position=(0.0, 0.5), radius=0.1))])
def test_the_quick_body_test_accepts_only_what_the_rules_accept(cls, base):
    """Bodies are checked by a quick test first (plain floats in range); whatever it accepts, the rules must too."""
    from ipe.scene import _BALL_RULES, _BLOCK_RULES, enforce, quick_body_ok

    template = cls(**base)
    accepted = 0
    for name in template.__dataclass_fields__:
        for value in TRICKY:
            body = object.__new__(cls)
            for key in template.__dataclass_fields__:
                object.__setattr__(body, key, getattr(template, key))
            object.__setattr__(body, name, value)
            if quick_body_ok(body):
                accepted += 1
                enforce(body, _BLOCK_RULES if cls is Block else _BALL_RULES)  # raises if the rules disagree
    assert accepted > 20
