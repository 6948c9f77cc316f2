"""Matching pieces that need no optics: the solver driver, knob and target specifications."""

import jax.numpy as jnp
import numpy as np
import optax
import optimistix as optx
import pytest

import jacc
from jacc.match import (Target, Vary, apply_values, current_values, flagged_copy, parse_knobs,
                        parse_targets, resolve_targets, row_of, solve)


def rosenbrock(y, a):
    return jnp.array([10.0 * (y[1] - y[0] ** 2), 1.0 - y[0]]) * a


@pytest.mark.parametrize("solver,tol", [
    (None, 1e-12),  # Levenberg-Marquardt: quadratic convergence on a zero-residual problem
    (optx.BFGS(rtol=1e-12, atol=1e-14), 1e-10),
    (optx.GaussNewton(rtol=1e-12, atol=1e-14), 1e-12),
])
def test_solve_second_order(solver, tol):
    res = solve(rosenbrock, jnp.array([-1.2, 1.0]), jnp.array(1.0), solver=solver, max_steps=500,
                progress=False)
    assert res.success and res.message == ""
    np.testing.assert_allclose(res.y, [1.0, 1.0], atol=tol)
    assert 0 < res.iterations < 500
    assert len(res.history) >= 1 and res.loss < 1e-18


def test_solve_optax_and_step_limit():
    res = solve(rosenbrock, jnp.array([-1.2, 1.0]), jnp.array(1.0), solver=optax.adam(2e-2),
                max_steps=3000, progress=False)
    # a first-order method on Rosenbrock's valley: slow, but it must get well down the valley
    assert res.loss < 1e-3 and res.iterations == len(res.history)
    short = solve(rosenbrock, jnp.array([-1.2, 1.0]), jnp.array(1.0), max_steps=2, progress=False)
    assert not short.success and "maximum number of steps" in short.message
    with pytest.raises(TypeError, match="optimistix"):
        solve(rosenbrock, jnp.zeros(2), 1.0, solver="lm")


def test_solve_reuses_compiled_program():
    cache = {}
    a = solve(rosenbrock, jnp.array([-1.2, 1.0]), jnp.array(1.0), jitted=cache, progress=False)
    b = solve(rosenbrock, jnp.array([-1.2, 1.0]), jnp.array(2.0), jitted=cache, progress=False)
    assert a.success and b.success
    # the second call found the compiled program: much faster than compile + run
    assert b.time_s < a.time_s


@pytest.fixture(scope="module")
def iota():
    return jacc.lattices.iota()


def test_parse_knobs_forms():
    assert [v.key for v in parse_knobs({"qf": "k1", "qd": ["k1", "k1s"], "kq01": None})] == \
        ["qf.k1", "qd.k1", "qd.k1s", "kq01"]
    assert [v.key for v in parse_knobs(["qf:3.k1", "kq01", Vary("qd", "k1", step=0.1)])] == \
        ["qf:3.k1", "kq01", "qd.k1"]
    assert parse_knobs("kq02")[0] == Vary("kq02")
    with pytest.raises(ValueError, match="more than once"):
        parse_knobs(["qf.k1", "qf.k1"])
    with pytest.raises(ValueError, match="step"):
        Vary("qf", "k1", step=0.0)


def test_knob_errors_list_valid_names(iota):
    lat, _ = iota
    with pytest.raises(ValueError, match=r"unknown lattice knob 'kq99'.*lattice knobs: \[.*'kq01'"):
        flagged_copy(lat, parse_knobs(["kq99"]))
    with pytest.raises(ValueError, match=r"unknown element 'qa1x'.*did you mean"):
        flagged_copy(lat, parse_knobs({"qa1x": "k1"}))
    with pytest.raises(ValueError, match=r"no numeric field 'k9'; valid: \[.*'k1'"):
        flagged_copy(lat, parse_knobs({"qa1r": "k9"}))
    with pytest.raises(ValueError, match="give its field"):
        flagged_copy(lat, parse_knobs(["qa1r"]))


def test_flag_and_apply(iota):
    lat, _ = iota
    varies = parse_knobs(["kq01", "qa2r.k1", "sqa1r:2.k1s"])
    flagged = flagged_copy(lat, varies)
    assert lat.flagged() == []  # the input is untouched
    assert set(flagged.flagged()) == {("kq01", "value"), ("qa2r", "k1"), ("sqa1r:2", "k1s")}
    assert current_values(lat, varies) == [lat.knobs["kq01"].value, lat["qa2r"].k1, 0.0]
    new = apply_values(lat, varies, [-9.0, 13.0, 0.01])
    assert new["qa1r"].k1 == -9.0 and new["qa1l"].k1 == -9.0  # kq01 drives both mirror quads
    assert new["qa2r"].k1 == 13.0 and "k1" not in new.expressions.get("qa2r", {})
    assert new["sqa1r:2"].k1s == 0.01 and new["sqa1r:1"].k1s == 0.0
    assert lat["qa2r"].k1 != 13.0
    # survives a JSON round trip (the removed expression does not come back)
    assert jacc.Lattice.from_json(new.to_json())["qa2r"].k1 == 13.0


def test_targets(iota):
    lat, _ = iota
    ts = parse_targets({"qx": 5.3, "betx@qa1r": 3.0, "bety@ibpma2r:1": ("<", 10.0)})
    assert [t.name for t in ts] == ["qx", "betx@qa1r", "bety@ibpma2r:1"]
    assert ts[2].op == "<"
    assert row_of(lat, "start") == 0 and row_of(lat, "end") == len(lat)
    assert row_of(lat, "qa1r") == lat.placements_of("qa1r")[0] + 1
    assert row_of(lat, 0) == 1
    with pytest.raises(ValueError, match="placed 2 times"):
        row_of(lat, "sqa1r")
    with pytest.raises(ValueError, match="names no element"):
        resolve_targets(lat, parse_targets({"betx@nowhere": 1.0}))
    with pytest.raises(ValueError, match=r"unknown target quantity 'qz'.*valid"):
        resolve_targets(lat, parse_targets({"qz": 1.0}))
    with pytest.raises(ValueError, match="needs a position"):
        resolve_targets(lat, parse_targets({"betx": 1.0}))
    with pytest.raises(ValueError, match="takes no 'at'"):
        resolve_targets(lat, [Target("qx", 1.0, at="qa1r")])
    with pytest.raises(ValueError, match="op must be"):
        Target("qx", 1.0, op="<=")
