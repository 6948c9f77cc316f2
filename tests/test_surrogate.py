"""`jacc.surrogate`: MLP surrogates trained on JACC's tracking, saved and loaded.

The data: rms beam sizes ``sigma_x``, ``sigma_y`` after three FODO cells (2.5 MeV protons,
200 particles drawn once) as functions of the two quadrupole knobs, each within +-10 % of
12 /m^2; JACC computes them (one compiled program, called per knob setting).
"""

import contextlib
import io
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc import surrogate

E = jacc
BOUNDS = {"kf": (10.8, 13.2), "kd": (-13.2, -10.8)}
OUT = ["sigma_x", "sigma_y"]


def _fodo():
    qf, qd = E.Quadrupole(name="qf", l=0.1), E.Quadrupole(name="qd", l=0.1)
    d = E.Drift(name="d", l=0.4)
    lat = jacc.Lattice.from_line(jacc.Line("fodo", [qf, d, qd, d], repeat=3),
                                 knobs={"kf": 12.0, "kd": -12.0},
                                 expressions={"qf": {"k1": "kf"}, "qd": {"k1": "kd"}})
    lat.knobs["kf"].diff = lat.knobs["kd"].diff = True
    return lat, jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)


@pytest.fixture(scope="module")
def data():
    """Training (256) and held-out (64) knob settings with JACC's beam sizes [m]."""
    lat, rp = _fodo()
    eng = jacc.TrackingEngine(lat, rp)
    f = eng.make_tracking_func(record=None, checkpoint=False)
    env = jacc.Envelope.from_twiss(1.0, 0.0, 1e-6, 1.0, 0.0, 1e-6, 1e-3, 1e-4)
    x0 = jacc.PhaseSpace.gaussian(rp, 200, env, key=jax.random.PRNGKey(0)).coords
    sizes = jax.jit(lambda k: jnp.std(f({"kf": k[0], "kd": k[1]}, x0).x[:, [0, 2]], axis=0))
    X, names = surrogate.latin_hypercube(BOUNDS, 256, seed=1)
    Xv, _ = surrogate.latin_hypercube(BOUNDS, 64, seed=2)
    Y = np.stack([np.asarray(sizes(k)) for k in X])
    Yv = np.stack([np.asarray(sizes(k)) for k in Xv])
    assert names == ("kf", "kd")
    return X, Y, Xv, Yv


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    X, Y, Xv, Yv = data
    plot = tmp_path_factory.mktemp("surrogate") / "loss.png"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):  # tqdm writes its bar to stderr
        sur, hist = surrogate.fit(X, Y, ["kf", "kd"], OUT, hidden=(16, 16), steps=3000, seed=0,
                                  validation=(Xv, Yv), plot_path=plot, progress=True)
    return sur, hist, plot, err.getvalue()


def test_reproduces_jacc_beam_sizes_on_held_out_inputs(data, trained):
    _, _, Xv, Yv = data
    sur = trained[0]
    pred = np.asarray(jax.vmap(sur)(jnp.asarray(Xv)))
    rel = np.abs(pred / Yv - 1)
    # the requirement: 1e-3 of the rms beam size; L-BFGS on 256 settings reaches 2.1e-4
    # (measured, max over 64 held-out settings and both planes; rms 8e-5)
    assert rel.max() < 1e-3, rel.max()
    assert (Yv.std(axis=0) / Yv.mean(axis=0)).min() > 0.1  # the sizes do vary (13 and 29 %)


def test_training_history_progress_and_plot(trained):
    _, hist, plot, bar = trained
    assert hist.loss.shape == (3000,) and np.all(np.isfinite(hist.loss))
    assert hist.loss[-1] < 1e-2 * hist.loss[0]
    np.testing.assert_array_equal(hist.val_step, np.arange(100, 3001, 100))
    assert hist.val_loss[-1] < 1e-6  # normalised MSE: the held-out error is ~1e-3 of the spread
    assert "surrogate fit" in bar and "3000/3000" in bar
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_by_name(trained, data):
    sur = trained[0]
    _, _, Xv, _ = data
    out = sur.predict({"kd": Xv[:5, 1], "kf": Xv[:5, 0]})
    assert set(out) == set(OUT) and out["sigma_x"].shape == (5,)
    y = jax.vmap(sur)(jnp.asarray(Xv[:5]))
    # predict runs the compiled batch, whose fused operations may round differently from
    # the op-by-op evaluation: a few ulps
    np.testing.assert_allclose(out["sigma_y"], y[:, 1], rtol=1e-14)
    assert sur.predict({"kf": 12.0, "kd": -12.0})["sigma_x"].shape == ()
    with pytest.raises(KeyError, match="missing"):
        sur.predict({"kf": 12.0})


def test_saved_surrogate_runs_bitwise_in_a_fresh_process(trained, data, tmp_path):
    sur = trained[0]
    _, _, Xv, _ = data
    path = surrogate.save(sur, tmp_path / "beam_size.eqx", history=trained[1],
                          metadata={"source": "JACC"})
    header = json.loads((tmp_path / "beam_size.json").read_text())
    assert header["input_names"] == ["kf", "kd"] and header["hidden"] == [16, 16]
    assert header["training"]["steps"] == 3000 and header["training"]["optimizer"] == "lbfgs"
    assert header["training"]["n_examples"] == 256 and header["metadata"] == {"source": "JACC"}
    assert [p["name"] for p in header["output_ports"]] == OUT
    np.save(tmp_path / "inputs.npy", Xv)
    code = (
        "import sys, numpy as np, jax, jax.numpy as jnp\n"
        "from jacc.surrogate import load\n"
        "sur = load(sys.argv[1])\n"
        "x = jnp.asarray(np.load(sys.argv[2]))\n"
        "np.save(sys.argv[3], np.asarray(jax.jit(jax.vmap(sur))(x)))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "inputs.npy"),
                    str(tmp_path / "out.npy")], check=True, timeout=120)
    here = np.asarray(jax.jit(jax.vmap(sur))(jnp.asarray(Xv)))
    # the same leaves, the same program: bit for bit
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), here)
    loaded = surrogate.load(path)
    assert loaded.input_names == sur.input_names and loaded.output_ports == sur.output_ports


def test_ports_with_shapes_round_trip(tmp_path):
    ports = {"centroid": (6,), "sigma": (6, 6), "emit_x": ()}
    sur = surrogate.Surrogate(["kq1", "current"], ports, (8,), key=jax.random.PRNGKey(3),
                              activation="gelu")
    assert sur.n_out == 43 and sur.output_names == ("centroid", "sigma", "emit_x")
    out = sur.predict({"kq1": jnp.ones(4), "current": 8e-3})
    assert out["centroid"].shape == (4, 6) and out["sigma"].shape == (4, 6, 6)
    assert out["emit_x"].shape == (4,)
    back = surrogate.load(surrogate.save(sur, tmp_path / "ports"))  # .eqx added
    assert (tmp_path / "ports.eqx").is_file() and (tmp_path / "ports.json").is_file()
    assert back.activation == "gelu"
    np.testing.assert_array_equal(back(jnp.array([1.0, 8e-3])), sur(jnp.array([1.0, 8e-3])))


def test_load_errors(tmp_path):
    a = surrogate.Surrogate(["a"], ["y"], (4,), key=jax.random.PRNGKey(0))
    b = surrogate.Surrogate(["a"], ["y"], (5,), key=jax.random.PRNGKey(0))
    with pytest.raises(FileNotFoundError, match="nothing.eqx"):
        surrogate.load(tmp_path / "nothing.eqx")
    pa = surrogate.save(a, tmp_path / "a.eqx")
    pb = surrogate.save(b, tmp_path / "b.eqx")
    (tmp_path / "a.json").unlink()
    with pytest.raises(FileNotFoundError, match="a.json"):
        surrogate.load(pa)
    (tmp_path / "a.json").write_text((tmp_path / "b.json").read_text())  # b's header, a's leaves
    with pytest.raises(ValueError, match="does not match its header"):
        surrogate.load(pa)
    header = json.loads((tmp_path / "b.json").read_text())
    del header["eqx_sha256"]  # no digest: the shapes themselves disagree
    (tmp_path / "a.json").write_text(json.dumps(header))
    with pytest.raises(ValueError, match="does not match its header"):
        surrogate.load(pa)
    (tmp_path / "b.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        surrogate.load(pb)
    with pytest.raises(ValueError, match=r"end in \.eqx"):
        surrogate.save(a, tmp_path / "a.pkl")


def test_fit_and_module_errors():
    X, Y = np.zeros((10, 2)), np.zeros((10, 1))
    with pytest.raises(ValueError, match=r"inputs must have shape \(m, 3\)"):
        surrogate.fit(X, Y, ["a", "b", "c"], ["y"], steps=100, progress=False)
    with pytest.raises(ValueError, match=r"outputs must have shape \(10, 2\)"):
        surrogate.fit(X, Y, ["a", "b"], ["y", "z"], steps=100, progress=False)
    Xn = X.copy()
    Xn[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"rows \[3\] are not finite"):
        surrogate.fit(Xn, Y, ["a", "b"], ["y"], steps=100, progress=False)
    with pytest.raises(ValueError, match="needs the full batch"):
        surrogate.fit(X, Y, ["a", "b"], ["y"], optimizer="lbfgs", batch_size=4, progress=False)
    with pytest.raises(ValueError, match="unknown activation"):
        surrogate.Surrogate(["a"], ["y"], key=jax.random.PRNGKey(0), activation="sigmoid")
    with pytest.raises(ValueError, match="more than once"):
        surrogate.Surrogate(["a", "a"], ["y"], key=jax.random.PRNGKey(0))


def test_adam_minibatches_learn_a_line():
    X = np.linspace(-1, 1, 64)[:, None]
    sur, hist = surrogate.fit(X, 3 * X + 1, ["u"], ["v"], hidden=(8,), steps=300,
                              batch_size=16, lr=1e-2, progress=False)
    # the mini-batch path trains: 300 Adam steps take the normalised error from ~1 to
    # below 1e-2 (measured 6e-3), i.e. within ~0.1 of the outputs' spread (1.7)
    assert hist.loss[0] > 0.1 and hist.loss[-1] < 1e-2
    np.testing.assert_allclose(sur(jnp.array([0.5]))[0], 2.5, atol=0.2)


def test_latin_hypercube_fills_every_bin():
    X, names = surrogate.latin_hypercube({"a": (0.0, 1.0), "b": (-2.0, 2.0)}, 20, seed=4)
    assert names == ("a", "b") and X.shape == (20, 2)
    for j, (lo, hi) in enumerate([(0.0, 1.0), (-2.0, 2.0)]):
        bins = np.floor((X[:, j] - lo) / (hi - lo) * 20).astype(int)
        np.testing.assert_array_equal(np.sort(bins), np.arange(20))
