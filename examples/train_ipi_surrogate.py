"""Train the surrogate of the IPI stand-in's diagnostic section (c2 to bpm4) used by
``ipi_pipeline.json``, and write it beside this script (``ipi_diagnostic_surrogate.eqx``
and its ``.json`` header).

    python examples/train_ipi_surrogate.py [--samples 8000] [--steps 12000]

Inputs: the beam's 27 moments at c2 (``beam_moments``: centroid, covariance upper
triangle); outputs: the centroid (``x_bpm4``, ``y_bpm4`` [m]) and rms sizes
(``sigma_x_bpm4``, ``sigma_y_bpm4`` [m]) at bpm4, as JACC tracks them (its default models).
Training beams are drawn around the nominal beam at c2 (the example's source tracked by
JACC to bpm3): the covariance's Cholesky factor scaled by up to +-25 % per coordinate and
mixed by 15 % random lower-triangular terms, the centroid offset by up to half an rms
size; each beam is 512 particles whitened to exactly those moments.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import jacc.surrogate
from jacc_twin import JaccTrackingModel, ParticleSource
from jacc_twin.models._observables import MOMENT_NAMES, beam_moments, particle_moments

HERE = pathlib.Path(__file__).resolve().parent
OUTPUTS = ("x_bpm4", "y_bpm4", "sigma_x_bpm4", "sigma_y_bpm4")
SECTION = {"start": "c2", "end": "bpm4"}


def nominal_moments(spec: dict):
    """``(mean, cov)`` of the example's beam at bpm3 (JACC from the entrance)."""
    src = next(m for m in spec["models"] if m["type"] == "particle_source")
    source = ParticleSource.model_validate(src, context={"base_dir": HERE})
    lattice = {"file": src["config_lattice"]["file"], "end": "bpm3"}
    line = JaccTrackingModel.model_validate({"name": "to_bpm3", "config_lattice": lattice,
                                             "outputs": {"centroid": {"type": "vector"},
                                                         "covariance": {"type": "vector"}}},
                                            context={"base_dir": HERE})
    out = line.run(source.run({}))
    return np.asarray(out["centroid"]), np.asarray(out["covariance"])


def whitened(n: int, rng) -> np.ndarray:
    """``n`` standard-normal 6-vectors with exactly zero mean and unit covariance."""
    z = rng.standard_normal((n, 6))
    z -= z.mean(axis=0)
    c = np.linalg.cholesky(z.T @ z / n)
    return np.linalg.solve(c, z.T).T


def sample_beams(mean0, cov0, m: int, rng):
    """``m`` (mean, Cholesky factor) pairs around the nominal beam."""
    l0 = np.linalg.cholesky(cov0)
    sig = np.sqrt(np.diag(cov0))
    d = np.exp(rng.uniform(-0.25, 0.25, (m, 6)))
    g = np.tril(rng.uniform(-0.15, 0.15, (m, 6, 6)))
    ls = d[:, :, None] * (l0[None] @ (np.eye(6)[None] + g))
    means = mean0 + rng.uniform(-0.5, 0.5, (m, 6)) * sig
    return means, ls


def training_data(spec: dict, m: int, seed: int = 0):
    """``(X (m, 27), Y (m, 4))`` from JACC tracking of the diagnostic section."""
    rng = np.random.default_rng(seed)
    mean0, cov0 = nominal_moments(spec)
    means, ls = sample_beams(mean0, cov0, m, rng)
    z = whitened(512, rng)
    section = JaccTrackingModel.model_validate(
        {"name": "diagnostic_section", "config_lattice": {"file": "ipi_standin.madx", **SECTION},
         "outputs": {"centroid": {"type": "vector"}, "beam_sizes": {"type": "vector"}}},
        context={"base_dir": HERE})
    track = jax.vmap(lambda x: section.run({"particles": x}))
    moments = jax.jit(jax.vmap(lambda x: beam_moments(*particle_moments(x, jnp.ones(x.shape[0], bool))[:2])))
    X, Y = [], []
    for i in range(0, m, 250):
        parts = means[i:i + 250, None, :] + np.einsum("nj,mij->mni", z, ls[i:i + 250])
        out = track(jnp.asarray(parts))
        X.append(np.asarray(moments(parts)))
        Y.append(np.stack([out["centroid"][:, 0], out["centroid"][:, 2],
                           out["beam_sizes"][:, 0], out["beam_sizes"][:, 2]], axis=1))
    return np.concatenate(X), np.concatenate(Y)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--out", default=str(HERE / "ipi_diagnostic_surrogate.eqx"))
    args = ap.parse_args(argv)
    spec = json.loads((HERE / "ipi_pipeline.json").read_text())
    X, Y = training_data(spec, args.samples)
    n_val = len(X) // 5
    sur, hist = jacc.surrogate.fit(X[n_val:], Y[n_val:], MOMENT_NAMES, OUTPUTS, hidden=(64, 64),
                                   steps=args.steps, validation=(X[:n_val], Y[:n_val]), progress=False)
    pred = np.asarray(jax.vmap(sur)(jnp.asarray(X[:n_val])))
    scale = np.concatenate([Y[:n_val, 2:4], Y[:n_val, 2:4]], axis=1)  # centroids relative to the rms size
    err = np.abs(pred - Y[:n_val]) / scale
    print(f"validation: max error / rms size {err.max():.2e}, median {np.median(err):.2e}, "
          f"final normalised MSE {hist.val_loss[-1]:.2e}")
    path = jacc.surrogate.save(sur, args.out, metadata={
        "source": "examples/train_ipi_surrogate.py", "section": SECTION, "samples": args.samples,
        "steps": args.steps, "validation_max_rel_err": float(err.max())})
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
