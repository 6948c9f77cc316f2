"""``XSUITE_DEFAULTS`` reproduce what xtrack does with a MAD-X sequence it imports.

A MAD-X sequence with every straight element type (and TILT/EALIGN misalignments) goes
through ``xt.Line.from_madx_sequence`` with its default settings; the same sequence tracked
with the ``(physics, method)`` pairs of the ``XSUITE_DEFAULTS`` dicts must agree to 1e-12.
The MAD-X -> JACC field conversion below is the lattice description's convention (MAD-X
names; ``hkick``/``vkick``/``kick`` -> ``xangle``/``yangle``; ``volt`` [MV] -> ``voltage`` [V]
per unit charge; ``freq`` [MHz] -> ``frequency`` [Hz]).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import xtrack as xt

from jacc.physics import drift, kicker, multipole, nllens, quadrupole, rfcavity, solenoid
from jacc.physics.base import DriftKick, ElementPhysics, Flow, Method, Reference
from jacc.physics.misalign import Misaligned
from test_physics_straight import particles
from xsuite_ref import xsuite_track

cpymad = pytest.importorskip("cpymad.madx")

DEFAULTS = {}
for _module in (drift, quadrupole, multipole, kicker, solenoid, rfcavity, nllens):
    DEFAULTS.update(_module.XSUITE_DEFAULTS)

# Both sides evaluate the same formulas in float64 (observed differences ~1e-15).
TOL = 1e-12

SEQUENCE = """
nl: nllens, knll=5e-5, cnll=9e-3;
qf: quadrupole, l=0.2, k1=4.2;
qs: quadrupole, l=0.2, k1=-3.1, k1s=1.2, tilt=0.1;
sx: sextupole, l=0.1, k2=35, k2s=-12;
oc: octupole, l=0.1, k3=400, k3s=-150;
mp: multipole, knl={1.5e-3, 0.35, 22, 350}, ksl={0, 0.12, -6, 40};
hk: hkicker, l=0.1, kick=1.1e-3;
vk: vkicker, kick=-0.7e-3;
kk: kicker, l=0.05, hkick=-0.4e-3, vkick=0.9e-3;
sl: solenoid, l=0.5, ks=1.3;
ca: rfcavity, l=0.3, volt=0.02, freq=30, lag=0.1;
cb: rfcavity, volt=0.01, freq=60, lag=0.35;
seq: sequence, l=3.0, refer=entry;
nl, at=0.0; qf, at=0.05; qs, at=0.3; sx, at=0.55; oc, at=0.7; mp, at=0.85; hk, at=0.9;
vk, at=1.05; kk, at=1.1; sl, at=1.2; ca, at=1.8; cb, at=2.2;
endsequence;
use, sequence=seq;
select, flag=error, clear; select, flag=error, pattern="^sx$"; ealign, dx=1.2e-3, dy=-0.8e-3, dpsi=0.2;
select, flag=error, clear; select, flag=error, pattern="^qf$"; ealign, dx=-0.5e-3, dy=0.3e-3;
"""
# The same alignment errors as in SEQUENCE (dx, dy, roll = TILT + DPSI).
ALIGN = {"sx": (1.2e-3, -0.8e-3, 0.2), "qf": (-0.5e-3, 0.3e-3, 0.0), "qs": (0.0, 0.0, 0.1)}

BEAMS = {
    "electron": "beam, particle=electron, energy=0.15051099895;",
    "proton": "beam, particle=proton, energy=0.94077208816;",
}


def jacc_element(el, charge: float):
    """``(element type, params)`` of a MAD-X element in the lattice description's fields."""
    kind = el.base_type.name
    if kind == "quadrupole":
        return "Quadrupole", dict(l=el.l, k1=el.k1, k1s=el.k1s)
    if kind == "sextupole":
        return "Sextupole", dict(l=el.l, k2=el.k2, k2s=el.k2s)
    if kind == "octupole":
        return "Octupole", dict(l=el.l, k3=el.k3, k3s=el.k3s)
    if kind == "multipole":
        n = max(len(el.knl), len(el.ksl))
        return "Multipole", dict(knl=np.pad(el.knl, (0, n - len(el.knl))), ksl=np.pad(el.ksl, (0, n - len(el.ksl))))
    if kind == "hkicker":
        return "HKicker", dict(l=el.l, xangle=el.kick, yangle=0.0)
    if kind == "vkicker":
        return "VKicker", dict(l=el.l, xangle=0.0, yangle=el.kick)
    if kind == "kicker":
        return "HVCorrector", dict(l=el.l, xangle=el.hkick, yangle=el.vkick)
    if kind == "solenoid":
        return "Solenoid", dict(l=el.l, ks=el.ks)
    if kind == "rfcavity":
        return "RFCavity", dict(l=el.l, voltage=el.volt * 1e6 / abs(charge), frequency=el.freq * 1e6, lag=el.lag)
    if kind == "nllens":
        return "NonlinearLens", dict(knll=el.knll, cnll=el.cnll)
    raise ValueError(f"no conversion for MAD-X {kind} {el.name}")


def jacc_chain(mad, line) -> list[tuple[ElementPhysics, Method, dict]]:
    """The imported line, element by element, as JACC default models."""
    charge = mad.sequence.seq.beam.charge
    chain = []
    for name in line.element_names:
        el = line[name]
        if isinstance(el, xt.Marker):
            continue
        if isinstance(el, xt.Drift):
            phys, method = DEFAULTS["Drift"]
            chain.append((phys, method, dict(l=el.length)))
            continue
        kind, params = jacc_element(mad.elements[name], charge)
        phys, method = DEFAULTS[kind]
        if name in ALIGN:
            dx, dy, roll = ALIGN[name]
            phys, params = Misaligned(phys), dict(params, dx=dx, dy=dy, tilt=roll)
        chain.append((phys, method, {k: jnp.asarray(v, dtype=float) for k, v in params.items()}))
    return chain


@pytest.fixture(scope="module", params=sorted(BEAMS))
def imported(request):
    mad = cpymad.Madx(stdout=False)
    mad.input(BEAMS[request.param] + SEQUENCE)
    line = xt.Line.from_madx_sequence(mad.sequence.seq, enable_align_errors=True)
    beam = mad.sequence.seq.beam
    ref = Reference(beam.beta, beam.gamma, beam.pc * 1e9, beam.mass * 1e9, beam.charge)
    yield mad, line, ref
    mad.quit()


def test_defaults_cover_the_straight_elements():
    expected = {"Drift", "Quadrupole", "Sextupole", "Octupole", "Multipole", "HKicker", "VKicker",
                "HVCorrector", "Solenoid", "RFCavity", "NonlinearLens"}
    assert set(DEFAULTS) == expected
    for kind, (phys, method) in DEFAULTS.items():
        assert isinstance(phys, ElementPhysics) and isinstance(method, Method), kind
        assert isinstance(method, (DriftKick, Flow)), kind


def test_imported_line_matches_defaults(imported):
    mad, line, ref = imported
    chain = jacc_chain(mad, line)
    kinds = {type(p.inner if isinstance(p, Misaligned) else p).__name__ for p, _, _ in chain}
    assert len(kinds) >= 9  # every physics class took part

    @jax.jit
    @jax.vmap
    def track(x):
        for phys, method, params in chain:
            x = method(phys, params, x, ref)
        return x

    x0 = particles()
    ours = np.asarray(track(jnp.asarray(x0)))
    theirs, state = xsuite_track(line, x0, mass0=ref.mass0, q0=ref.charge, p0c=ref.p0c)
    assert np.all(state == 1)
    err = np.max(np.abs(ours - theirs), axis=0)
    assert np.max(err) < TOL, f"max |JACC - xtrack| per coordinate: {err}"
