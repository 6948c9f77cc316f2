"""First-order maps of the straight elements against MAD-X (cpymad ``twiss, rmatrix``).

Each element sits alone at the start of a sequence; MAD-X's ``re11..re66`` at the element
is compared with ``matrix()`` (and the orbit with ``offset()``), using MAD-X's own beta0 and
gamma0 (its CODATA 2018 masses) for 150 MeV electrons and 2.5 MeV protons.
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jacc.physics.base import Linear, Reference
from jacc.physics.drift import Drift
from jacc.physics.kicker import Kicker
from jacc.physics.misalign import Misaligned
from jacc.physics.multipole import Multipole, Octupole, Sextupole
from jacc.physics.nllens import NonlinearLens
from jacc.physics.quadrupole import ChromaticQuadrupole, Quadrupole
from jacc.physics.rfcavity import RFCavity
from jacc.physics.solenoid import Solenoid

cpymad = pytest.importorskip("cpymad.madx")

from madx_ref import madx, madx_first_order  # noqa: E402,F401 (madx: a fixture)

# MAD-X prints its matrices from float64 maps of the same formulas; 1e-10 leaves room for its
# own rounding in long expressions (observed: < 1e-15).
TOL_MADX = 1e-10




# (id, MAD-X definition, length, physics, parameters)
CASES = [
    ("drift", "drift, l=1.3", 1.3, Drift(), dict(l=1.3)),
    ("quad", "quadrupole, l=0.3, k1=4.2", 0.3, ChromaticQuadrupole(), dict(l=0.3, k1=4.2, k1s=0.0)),
    ("quad-defocusing", "quadrupole, l=0.3, k1=-4.2", 0.3, Quadrupole(), dict(l=0.3, k1=-4.2, k1s=0.0)),
    ("quad-coupled", "quadrupole, l=0.3, k1=-3.1, k1s=1.2", 0.3, ChromaticQuadrupole(), dict(l=0.3, k1=-3.1, k1s=1.2)),
    ("quad-skew", "quadrupole, l=0.3, k1s=1.2", 0.3, ChromaticQuadrupole(), dict(l=0.3, k1=0.0, k1s=1.2)),
    ("quad-weak", "quadrupole, l=0.3, k1=1e-5", 0.3, ChromaticQuadrupole(), dict(l=0.3, k1=1e-5, k1s=0.0)),
    ("sextupole", "sextupole, l=0.2, k2=35, k2s=-12", 0.2, Sextupole(), dict(l=0.2, k2=35.0, k2s=-12.0)),
    ("octupole", "octupole, l=0.2, k3=400, k3s=-150", 0.2, Octupole(), dict(l=0.2, k3=400.0, k3s=-150.0)),
    (
        "multipole-bend", "multipole, knl={1.5e-3, 0.35, 22}, ksl={0, 0.12, -6}", 0.0, Multipole(),
        dict(knl=[1.5e-3, 0.35, 22.0], ksl=[0.0, 0.12, -6.0]),
    ),
    ("multipole", "multipole, knl={0, -0.35}, ksl={0, 0.12}", 0.0, Multipole(), dict(knl=[0.0, -0.35], ksl=[0.0, 0.12])),
    ("kicker-thin", "kicker, hkick=1.1e-3, vkick=-0.7e-3", 0.0, Kicker(), dict(l=0.0, xangle=1.1e-3, yangle=-0.7e-3)),
    ("hkicker-thin", "hkicker, kick=1.1e-3", 0.0, Kicker(), dict(l=0.0, xangle=1.1e-3, yangle=0.0)),
    ("vkicker-thin", "vkicker, kick=-0.7e-3", 0.0, Kicker(), dict(l=0.0, xangle=0.0, yangle=-0.7e-3)),
    ("kicker-thick-off", "kicker, l=0.15", 0.15, Kicker(), dict(l=0.15, xangle=0.0, yangle=0.0)),
    ("solenoid", "solenoid, l=0.7, ks=1.3", 0.7, Solenoid(), dict(l=0.7, ks=1.3)),
    ("rf-thin", "rfcavity, volt=0.02, freq=30, lag=0", 0.0, RFCavity(), dict(l=0.0, voltage=2e4, frequency=30e6, lag=0.0)),
    (
        "rf-thick", "rfcavity, l=0.4, volt=0.02, freq=30, lag=0.5", 0.4, RFCavity(),
        dict(l=0.4, voltage=2e4, frequency=30e6, lag=0.5),
    ),
    ("nllens", "nllens, knll=5e-5, cnll=9e-3", 0.0, NonlinearLens(), dict(knll=5e-5, cnll=9e-3)),
]


def _jparams(params):
    return {k: jnp.asarray(v, dtype=float) for k, v in params.items()}


@pytest.mark.parametrize("name,definition,length,phys,params", CASES, ids=[c[0] for c in CASES])
def test_matrix_and_orbit_match_madx(madx, name, definition, length, phys, params):
    mad, ref = madx
    r, orbit = madx_first_order(mad, definition, length)
    p = _jparams(params)
    m = np.asarray(jax.jit(phys.matrix, static_argnums=1)(p, ref))
    c = np.asarray(jax.jit(phys.offset, static_argnums=1)(p, ref))
    assert np.max(np.abs(m - r)) < TOL_MADX, f"{name}: max |R - R_madx| = {np.max(np.abs(m - r)):.2e}"
    assert np.max(np.abs(c - orbit)) < TOL_MADX, f"{name}: orbit {c} vs MAD-X {orbit}"


def test_thick_kicker_orbit_matches_madx(madx):
    """With kicks, MAD-X expands about the kicked orbit; x, px, y, py are first order and agree.

    (MAD-X's R16/R52-type entries and t then carry terms of order kick * pt, second order
    in the joint expansion that ``matrix``/``offset`` define.)
    """
    mad, ref = madx
    _, orbit = madx_first_order(mad, "kicker, l=0.15, hkick=1.1e-3, vkick=-0.7e-3", 0.15)
    c = np.asarray(Kicker().offset(_jparams(dict(l=0.15, xangle=1.1e-3, yangle=-0.7e-3)), ref))
    assert np.max(np.abs(c[:4] - orbit[:4])) < TOL_MADX


TILTED = [
    ("quad", "quadrupole, l=0.3, k1=-3.1, k1s=1.2, tilt=0.25", 0.3, ChromaticQuadrupole(), dict(l=0.3, k1=-3.1, k1s=1.2)),
    ("quad-pi/4", f"quadrupole, l=0.3, k1=4.2, tilt={np.pi / 4!r}", 0.3, Quadrupole(), dict(l=0.3, k1=4.2, k1s=0.0)),
    ("multipole", "multipole, knl={0, 0.35}, ksl={0, 0.12}, tilt=-0.4", 0.0, Multipole(), dict(knl=[0.0, 0.35], ksl=[0.0, 0.12])),
    ("kicker", "kicker, hkick=1.1e-3, vkick=-0.7e-3, tilt=0.3", 0.0, Kicker(), dict(l=0.0, xangle=1.1e-3, yangle=-0.7e-3)),
]


@pytest.mark.parametrize("name,definition,length,phys,params", TILTED, ids=[c[0] for c in TILTED])
def test_tilt_matches_madx(madx, name, definition, length, phys, params):
    """The roll convention of ``Misaligned`` is MAD-X's TILT (first-order map with entry/exit)."""
    mad, ref = madx
    r, orbit = madx_first_order(mad, definition, length)
    tilt = float(definition.split("tilt=")[1])
    wrapped = Misaligned(phys)
    p = _jparams(dict(params, dx=0.0, dy=0.0, tilt=tilt))
    m = np.asarray(jax.jacfwd(lambda x: Linear()(wrapped, p, x, ref))(jnp.zeros(6)))
    c = np.asarray(Linear()(wrapped, p, jnp.zeros(6), ref))
    assert np.max(np.abs(m - r)) < TOL_MADX
    assert np.max(np.abs(c - orbit)) < TOL_MADX


def test_pi_over_4_tilt_makes_skew_quadrupole(madx):
    """MAD-X: a normal quadrupole tilted by +pi/4 is the skew quadrupole k1s = -k1."""
    _, ref = madx
    p = _jparams(dict(l=0.3, k1=4.2, k1s=0.0, dx=0.0, dy=0.0, tilt=np.pi / 4))
    m = jax.jacfwd(lambda x: Linear()(Misaligned(ChromaticQuadrupole()), p, x, ref))(jnp.zeros(6))
    skew = ChromaticQuadrupole().matrix(_jparams(dict(l=0.3, k1=0.0, k1s=-4.2)), ref)
    assert np.max(np.abs(np.asarray(m) - np.asarray(skew))) < 1e-14
