"""The chromatic pass against derivatives in delta computed another way.

`jacc.twiss` differentiates the transfer matrices in delta along the exact orbit tangent,
either by automatic differentiation (``chrom_derivative="exact"``, the default) or by a
four-point difference of the element Jacobians (``"difference"``, `jacc.optics.shooting`).
The reference here is independent of both: forward-mode AD, in ``delta0``, of the
first-order optics (``chrom=False``: the orbit's dependence on delta through the implicit
function theorem; a line's start moves along its initial dispersion). The exact pass must
agree to rounding (1e-11 of the largest value of each column; measured 1e-13). The
difference formula's truncation and rounding errors are about 1e-12 of each quantity's
scale (measured 1e-11 on this ring); its tolerance, 1e-9, leaves room for other lattices'
maps and still fails if the pass were off by one order of the step (a two-point difference
at the same step is off by 2e-6).
"""

import jax
import numpy as np
import pytest

import jacc
from jacc.engine.cache import compiled_line, default_preset
from jacc.optics import TwissOptions
from jacc.optics.lattice_functions import montague
from jacc.optics.twiss import TwissInit, make_twiss_core
from jacc.optics.twiss_func import init_vector
from test_optics_api import small_ring

REL = {"exact": 1e-11, "difference": 1e-9}


@pytest.fixture(scope="module")
def cases():
    rp = jacc.ReferenceParticle.from_kinetic_energy("electron", 150e6)
    lat = small_ring()
    spec = compiled_line(lat, rp.reference(), default_preset(), specialise=False).spec
    ring_tw = jacc.twiss(lat, rp)
    line_init = TwissInit.from_table(ring_tw, 0)
    line_init = TwissInit(**{**{k: getattr(line_init, k) for k in ("betx", "alfx", "bety", "alfy", "dx", "dpx")},
                             "x": 1e-3, "py": -2e-4})
    return spec, {"ring": (True, None), "line": (False, line_init)}, lat, rp


def _exact(spec, periodic, init, delta0):
    """Columns and their exact derivatives in delta from the first-order optics."""
    core = make_twiss_core(spec, periodic=periodic, chrom=False)
    iv = jax.numpy.asarray(init_vector(init))
    keys = ("mux", "muy", "betx", "alfx", "bety", "alfy", "dx", "dpx") + (("qx", "qy") if periodic else ())

    def columns(d):
        # a line's start moves with its initial dispersion, as the chromatic pass assumes
        start = iv.at[8:12].add(iv[4:8] * (d - delta0))
        tw = core(spec.table, d, start)[0]
        return {k: getattr(tw, k) for k in keys}

    primal, tangent = jax.jvp(jax.jit(columns), (np.float64(delta0),), (np.float64(1.0),))
    return primal, tangent


def _close(ours, ref, what, rel):
    ours, ref = np.asarray(ours), np.asarray(ref)
    scale = max(np.max(np.abs(ref)), 1e-12)
    assert np.max(np.abs(ours - ref)) <= rel * scale, (what, np.max(np.abs(ours - ref)) / scale)


@pytest.mark.parametrize("mode", ["exact", "difference"])
@pytest.mark.parametrize("which, delta0", [("ring", 0.0), ("ring", 2e-3), ("line", 0.0)])
def test_chromatic_columns_are_the_derivatives_in_delta(cases, which, delta0, mode):
    spec, setups, lat, rp = cases
    periodic, init = setups[which]
    primal, d = _exact(spec, periodic, init, delta0)
    tw = jacc.twiss(lat, rp, init=init, delta0=delta0, options=TwissOptions(chrom_derivative=mode))
    rel = REL[mode]
    for ours, ref in (("dmux", "mux"), ("dmuy", "muy"), ("ddx", "dx"), ("ddpx", "dpx")):
        _close(getattr(tw, ours), d[ref], ours, rel)
    _close(tw.wx, montague(primal["betx"], primal["alfx"], d["betx"], d["alfx"]), "wx", rel)
    _close(tw.wy, montague(primal["bety"], primal["alfy"], d["bety"], d["alfy"]), "wy", rel)
    if periodic:
        assert abs(float(tw.dqx) - float(d["qx"])) <= rel * abs(float(d["qx"]))
        assert abs(float(tw.dqy) - float(d["qy"])) <= rel * abs(float(d["qy"]))
