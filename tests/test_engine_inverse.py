"""Every element model of the presets has an exact inverse (used by reversible reverse mode)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc
from jacc.engine.kernels import make_single, make_single_inverse

ELEMENTS = [
    jacc.Drift(name="d", l=0.7),
    jacc.Quadrupole(name="q", l=0.3, k1=2.0, k1s=0.3),
    jacc.Quadrupole(name="qn", l=0.3, k1=-2.0),
    jacc.SBend(name="b", l=0.5, angle=0.3, k1=0.2, e1=0.1, e2=0.05, fint=0.5, gap=0.04),
    jacc.RBend(name="rb", l=0.4, angle=-0.2, e1=0.03),
    jacc.DipoleEdge(name="de", h=0.6, e1=0.1, gap=0.03, fint=0.5, side="exit"),
    jacc.Sextupole(name="s", l=0.2, k2=40.0, k2s=5.0),
    jacc.Octupole(name="o", l=0.2, k3=500.0),
    jacc.Multipole(name="m", knl=[1e-3, 0.1, 3.0], ksl=[0.0, 0.05]),
    jacc.HVCorrector(name="c", l=0.1, xangle=1e-4, yangle=-2e-4),
    jacc.Solenoid(name="so", l=0.4, ks=1.2),
    jacc.RFCavity(name="rf", l=0.2, voltage=5e4, frequency=325e6, lag=0.2),
    jacc.NonlinearLens(name="nl", knll=1e-5, cnll=0.01),
    jacc.Quadrupole(name="qm", l=0.3, k1=1.0, dx=1e-3, dy=-2e-3, tilt=0.1),
]


@pytest.mark.parametrize("preset", [jacc.Xsuite(), jacc.XsuiteFullEdge()], ids=["Xsuite", "XsuiteFullEdge"])
def test_inverse_undoes_every_element(preset):
    rp = jacc.ReferenceParticle.from_kinetic_energy("proton", 2.5e6)
    lat = jacc.Lattice.from_elements(ELEMENTS)
    spec = jacc.TrackingEngine(lat, rp, model=preset).spec
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (32, 6)) * np.array([3e-3, 3e-3, 3e-3, 3e-3, 1e-2, 1e-3]))
    table = jnp.asarray(spec.table)
    for step, k in enumerate(spec.kernel_index):
        ks = spec.kernels[int(k)]
        fwd, inv = make_single(ks, spec.ref), make_single_inverse(ks, spec.ref)
        y = jax.vmap(lambda v: fwd(table[step], v)[0])(x)
        back = jax.vmap(lambda v: inv(table[step], v))(y)
        # inverse flows cancel to rounding; the faces' fixed-point inverse to rounding too
        err = float(jnp.max(jnp.abs(back - x)))
        assert err < 1e-14, f"{ks.kind} ({type(ks.physics).__name__}, {type(ks.method).__name__}): {err:.2e}"
