"""Shared by the Bmad and elegant tests: the MAD-X version of the small test lattices."""

from __future__ import annotations

import os
import warnings

import numpy as np

import jacc
from jacc.lattice import PhysicsWarning

DATA = os.path.join(os.path.dirname(__file__), "data", "interop")
FODO_MADX = os.path.join(DATA, "fodo.madx")

# The tolerances are tunes 1e-9 and betas 1e-8 relative. JACC's optics of the MAD-X
# import itself differ from MAD-X's TWISS by up to 1.9e-9 in qy on this ring (its bends carry
# k1 and edges with fringe: Xsuite's bend model vs MAD-X's matrices), so the importers are
# held to 5e-9 on tunes against MAD-X and to exact equality with the MAD-X import.
TUNE_ABS = 5e-9
BETA_REL = 1e-8


def madx_fodo():
    """MAD-X's TWISS of fodo.madx: columns copied (cpymad tables are live views)."""
    import cpymad.madx

    m = cpymad.madx.Madx(stdout=False)
    m.call(FODO_MADX)
    t = m.twiss()
    ref = {c: np.array(t[c]).copy() for c in ("s", "betx", "bety")}
    ref["q1"], ref["q2"] = float(m.table.summ.q1[0]), float(m.table.summ.q2[0])
    m.quit()
    return ref


def madx_import():
    from jacc.lattice.io_madx import beam_reference_particle, read_madx

    lat = read_madx(FODO_MADX)
    return lat, beam_reference_particle(lat.extra["beam"])


def same_as_madx_import(lat, ref_lat) -> None:
    """Every placement and every field equal to the MAD-X import's (per-code extras aside)."""
    assert lat.line == ref_lat.line
    for name, el in ref_lat.definitions.items():
        a, b = el.model_dump(), lat.definitions[name].model_dump()
        a.pop("extra"), b.pop("extra")
        assert a == b, name
    for name, fields in ref_lat.expressions.items():
        assert set(fields) == set(lat.expressions.get(name, {})), name


def compare_twiss(tw, ref) -> dict:
    n = len(tw)
    np.testing.assert_allclose(np.asarray(tw.s), ref["s"][:n], atol=1e-9)
    worst = {"qx": abs(float(tw.qx) - ref["q1"]), "qy": abs(float(tw.qy) - ref["q2"])}
    for c in ("betx", "bety"):
        worst[c] = float(np.abs(np.asarray(tw[c]) / ref[c][:n] - 1).max())
    assert worst["qx"] < TUNE_ABS and worst["qy"] < TUNE_ABS, worst
    assert worst["betx"] < BETA_REL and worst["bety"] < BETA_REL, worst
    return worst


def every_type_lattice():
    """One element of each type both codes can hold, knobs and overrides included."""
    from jacc.lattice import (HKicker, HVCorrector, Lattice, Marker, Monitor, Multipole, Octupole,
                              Quadrupole, RBend, RFCavity, SBend, Sextupole, Solenoid, VKicker)
    from jacc.lattice import Drift, Knob

    els = [Drift(name="d", l=0.5), Marker(name="m"), Monitor(name="bpm", l=0.1),
           Quadrupole(name="q", l=0.3, k1=1.1, tilt=0.1, dx=1e-4, dy=-2e-4),
           SBend(name="b", l=1.2, angle=0.2, k1=0.05, k2=0.3, e1=0.05, e2=-0.02, fint=0.4,
                 fintx=0.3, gap=0.03, h_pole1=0.1, h_pole2=-0.1, tilt=0.2),
           RBend(name="rb", l=0.8, angle=-0.15, e1=0.01, e2=0.02, fint=0.5, gap=0.02),
           Sextupole(name="s", l=0.2, k2=3.0, tilt=0.05), Octupole(name="o", l=0.1, k3=-20.0),
           Multipole(name="mp", knl=[0.0, 0.0, 0.3]), HKicker(name="hk", xangle=1e-3),
           VKicker(name="vk", l=0.1, yangle=-2e-3), HVCorrector(name="hv", xangle=1e-4, yangle=2e-4),
           Solenoid(name="sol", l=0.6, ks=0.4),
           RFCavity(name="rf", l=0.3, voltage=1e5, frequency=3e7, lag=0.25)]
    lat = Lattice.from_elements(els + [els[3], els[0]], name="every")
    lat.knobs = {"kq": Knob(value=1.1)}
    lat.expressions = {"q": {"k1": "kq * 1"}, "s": {"k2": "(kq + 1.9) ** 1"}}
    lat["q:2"].k1 = 0.9
    return lat


def quiet(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PhysicsWarning)
        return func(*args, **kwargs)


def twiss_of(lat, rp):
    return jacc.twiss(lat, rp)
