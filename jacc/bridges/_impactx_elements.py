"""One JACC element -> its ImpactX elements (see `jacc.bridges._impactx` for the rules)."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import scipy.constants as const

from ._impactx import _CODE, _DEG, _Context, linear_edge_fint, linear_map
from ._watchpoint import ImpactXWatchpoint

# elements JACC's engine never misaligns (an aperture is checked in the reference frame)
_PASSIVE = ("Marker", "RectangularAperture", "EllipticalAperture")


def convert(ctx: _Context, el) -> None:
    """Append the ImpactX elements of placement ``el`` (its aperture first) to ``ctx.out``."""
    from impactx import elements as ix

    if el.aperture is not None and ctx.config.install_apertures:
        shape = "rectangular" if el.aperture.shape == "rectangle" else "elliptical"
        ctx.add(f"{el.name}_aper", partial(ix.Aperture, aperture_x=el.aperture.a,
                                           aperture_y=el.aperture.b, shape=shape))
    builder = _BUILDERS.get(el.element_name)
    if builder is None:
        raise NotImplementedError(
            f"{el.element_name} '{el.name}': no {_CODE} counterpart; element types "
            f"{_CODE} export supports: {sorted(_BUILDERS)}")
    builder(ctx, el, _alignment(el))


def _alignment(el) -> dict:
    if el.element_name in _PASSIVE:
        return {}
    return {"dx": el.dx, "dy": el.dy, "rotation": (el.tilt + el.dtilt) * _DEG}


def _unsupported(el, why: str) -> NotImplementedError:
    return NotImplementedError(f"{el.element_name} '{el.name}': no {_CODE} counterpart: {why}")


def _drift_piece(ctx, name: str, length: float, al: dict) -> None:
    from impactx import elements as ix

    cls = {"linear": ix.Drift, "paraxial": ix.ChrDrift, "exact": ix.ExactDrift}[ctx.config.model]
    ctx.add(name, partial(cls, ds=length, nslice=ctx.config.n_slices, **al))


def _drift(ctx, el, al):
    _drift_piece(ctx, el.name, el.l, al)


def _marker(ctx, el, al):
    from impactx import elements as ix

    ctx.add(el.name, ix.Marker)


def _monitor(ctx, el, al):
    from impactx import elements as ix

    if el.l > 0.0:  # the reading is at the monitor's exit, as JACC's and MAD-X's
        _drift_piece(ctx, f"{el.name}_drift", el.l, al)
    kind = ctx.config.default_monitor_type
    if kind == "marker":
        ctx.add(el.name, ix.Marker)
    elif kind == "beam_monitor":
        ctx.add(el.name, lambda name: ix.BeamMonitor(name))
    else:
        def watchpoint(name):
            wp = ImpactXWatchpoint(name, ctx.config.watchpoint)
            ctx.out.watchpoints[name] = wp
            return wp.element

        ctx.add(el.name, watchpoint)


def _quad_body(ctx, name, length, k, al):
    from impactx import elements as ix

    cfg = ctx.config
    if cfg.model == "linear":
        make = partial(ix.Quad, ds=length, k=k, nslice=cfg.n_slices, **al)
    elif cfg.model == "paraxial":
        make = partial(ix.ChrQuad, ds=length, k=k, unit=0, nslice=cfg.n_slices, **al)
    else:
        make = partial(ix.ExactQuad, ds=length, k=k, unit=0, int_order=cfg.int_order,
                       mapsteps=cfg.mapsteps, nslice=cfg.n_slices, **al)
    ctx.add(name, make)


def _quadrupole(ctx, el, al):
    # normal and skew gradients are one quadrupole of strength hypot(k1, k1s) rolled by
    # -atan2(k1s, k1) / 2 (a normal quadrupole rolled by tilt has k1s = -k1 sin(2 tilt))
    k = el.k1
    if el.k1s != 0.0:
        k = math.hypot(el.k1, el.k1s)
        al = dict(al, rotation=al["rotation"] - 0.5 * math.atan2(el.k1s, el.k1) * _DEG)
    if el.l == 0.0:
        raise _unsupported(el, "a zero-length quadrupole (JACC's are thick)")
    _quad_body(ctx, el.name, el.l, k, al)


def _edge(ctx, name, h, e, gap, fint, location, al):
    from impactx import elements as ix

    cfg = ctx.config
    if cfg.edge_model == "linear" and cfg.edge_fringe == "madx":
        fint = linear_edge_fint(h, e, gap, fint)
    # the nonlinear fringe map moves the design orbit (x by 4e-6 m and t by 2 cm per IOTA
    # injector edge): ImpactX then moves its reference particle with it, so that the
    # coordinates stay relative to the design orbit, as JACC's
    ctx.add(name, partial(ix.DipEdge, psi=e, rc=1.0 / h, g=gap, K2=fint, model=cfg.edge_model,
                          location=location, modify_ref_part=cfg.edge_model == "nonlinear", **al))


def _bend(ctx, el, al, length, e1, e2):
    """Faces and body of a sector bend of arc ``length`` [m] and face angles ``e1, e2``."""
    from impactx import elements as ix

    cfg = ctx.config
    if el.angle == 0.0:  # a straight magnet: no edges (h = 0), a quadrupole body or a drift
        return _straight_bend(ctx, el, al, length)
    h = el.angle / length
    faces = e1 != 0.0 or e2 != 0.0 or (el.gap != 0.0 and (el.fint != 0.0 or el.fintx != 0.0))
    if faces:
        _edge(ctx, f"{el.name}_edge_entry", h, e1, el.gap, el.fint, "entry", al)
    exact = cfg.model != "linear"  # ImpactX has no paraxial bend
    if exact and (el.k1 != 0.0 or el.k2 != 0.0):
        make = partial(ix.ExactCFbend, ds=length, k_normal=[h, el.k1, el.k2], k_skew=[0.0, 0.0, 0.0],
                       unit=0, int_order=cfg.int_order, mapsteps=cfg.mapsteps, nslice=cfg.n_slices, **al)
    elif exact:
        make = partial(ix.ExactSbend, ds=length, phi=el.angle * _DEG, nslice=cfg.n_slices, **al)
    elif el.k1 != 0.0:  # the linear body: k2 has no first-order effect
        make = partial(ix.CFbend, ds=length, rc=1.0 / h, k=el.k1, nslice=cfg.n_slices, **al)
    else:
        make = partial(ix.Sbend, ds=length, rc=1.0 / h, nslice=cfg.n_slices, **al)
    ctx.add(el.name, make)
    if faces:
        _edge(ctx, f"{el.name}_edge_exit", h, e2, el.gap, el.fintx, "exit", al)


def _straight_bend(ctx, el, al, length):
    from impactx import elements as ix

    if el.k2 != 0.0 and ctx.config.model != "linear":
        cfg = ctx.config
        ctx.add(el.name, partial(ix.ExactMultipole, ds=length, k_normal=[0.0, el.k1, el.k2],
                                 k_skew=[0.0, 0.0, 0.0], unit=0, int_order=cfg.int_order,
                                 mapsteps=cfg.mapsteps, nslice=cfg.n_slices, **al))
    elif el.k1 != 0.0:
        _quad_body(ctx, el.name, length, el.k1, al)
    else:
        _drift_piece(ctx, el.name, length, al)


def _sbend(ctx, el, al):
    _bend(ctx, el, al, el.l, el.e1, el.e2)


def _rbend(ctx, el, al):
    # the sector bend of the same arc with angle / 2 added to both faces (MAD-X, Xsuite, JACC)
    half = 0.5 * el.angle
    arc = el.l if half == 0.0 else el.l * half / math.sin(half)
    _bend(ctx, el, al, arc, el.e1 + half, el.e2 + half)


def _dipole_edge(ctx, el, al):
    from impactx import elements as ix

    if el.h == 0.0:  # no field at the face: the identity, as in JACC
        ctx.add(el.name, ix.Marker)
        return
    _edge(ctx, el.name, el.h, el.e1, el.gap, el.fint, el.side, al)


def _thick_multipole(ctx, el, al, knl, ksl):
    from impactx import elements as ix

    cfg = ctx.config
    if el.l == 0.0:  # JACC's thick kicks scale with l: the identity
        ctx.add(el.name, ix.Marker)
        return
    ctx.add(el.name, partial(ix.ExactMultipole, ds=el.l, k_normal=knl, k_skew=ksl, unit=0,
                             int_order=cfg.int_order, mapsteps=cfg.mapsteps, nslice=cfg.n_slices, **al))


def _sextupole(ctx, el, al):
    _thick_multipole(ctx, el, al, [0.0, 0.0, el.k2], [0.0, 0.0, el.k2s])


def _octupole(ctx, el, al):
    _thick_multipole(ctx, el, al, [0.0, 0.0, 0.0, el.k3], [0.0, 0.0, 0.0, el.k3s])


def _multipole(ctx, el, al):
    from impactx import elements as ix

    if (el.knl and el.knl[0] != 0.0) or el.angle:
        raise _unsupported(el, f"knl[0] = {el.knl[0] if el.knl else 0.0}, angle = {el.angle}: a "
                               "dipole term (a bend of the reference or a kick) is not exported; "
                               "ImpactX's thin multipoles only kick")
    n = max(len(el.knl), len(el.ksl))
    orders = [(m, el.knl[m] if m < len(el.knl) else 0.0, el.ksl[m] if m < len(el.ksl) else 0.0)
              for m in range(n)]
    orders = [o for o in orders if o[1] != 0.0 or o[2] != 0.0]
    if not orders:
        ctx.add(el.name, ix.Marker)
    for m, kn, ks in orders:  # ImpactX counts orders from 1 (dipole)
        name = el.name if len(orders) == 1 else f"{el.name}_m{m + 1}"
        ctx.add(name, partial(ix.Multipole, multipole=m + 1, K_normal=kn, K_skew=ks, **al))


def _thin_in_drifts(ctx, el, al, make) -> None:
    """``make`` between two half drifts of the element's length (JACC's drift-kick split)."""
    if el.l > 0.0:
        _drift_piece(ctx, f"{el.name}_drift_in", 0.5 * el.l, al)
    ctx.add(el.name, make)
    if el.l > 0.0:
        _drift_piece(ctx, f"{el.name}_drift_out", 0.5 * el.l, al)


def _kicker(ctx, el, al):
    from impactx import elements as ix

    _thin_in_drifts(ctx, el, al, partial(ix.Kicker, xkick=el.xangle, ykick=el.yangle,
                                         unit="dimensionless", **al))


def _solenoid(ctx, el, al):
    from impactx import elements as ix

    if el.l == 0.0:
        if el.ks != 0.0:
            raise _unsupported(el, f"a zero-length solenoid with ks = {el.ks} (JACC needs a length)")
        ctx.add(el.name, ix.Marker)
        return
    cfg = ctx.config
    if cfg.model == "linear":
        make = partial(ix.Sol, ds=el.l, ks=el.ks, nslice=cfg.n_slices, **al)
    else:  # ChrAcc without field gradient: bz = q Bz / (m c) = ks beta0 gamma0
        make = partial(ix.ChrAcc, ds=el.l, ez=0.0, bz=el.ks * ctx.rp.beta0 * ctx.rp.gamma0,
                       nslice=cfg.n_slices, **al)
    ctx.add(el.name, make)


def _rf_cavity(ctx, el, al):
    from impactx import elements as ix

    freq = ctx.frequency(el)
    phase = 2.0 * math.pi * el.lag
    # JACC: pt += |q| V / p0c sin(2 pi lag - 2 pi f t / c); reference energy gain |q| V sin(2 pi lag)
    if el.voltage != 0.0 and abs(math.sin(phase)) > 1e-12:
        raise _unsupported(el, f"lag = {el.lag} gives the reference particle an energy gain: "
                               "ImpactX changes its reference energy, JACC keeps p0 and shifts pt")
    v = abs(ctx.rp.charge) * el.voltage  # peak energy gain [eV]
    kind = ctx.config.rf
    if kind == "short_rf":  # ImpactX: gain V cos(k t_impactx + phi), phi = 2 pi lag - pi / 2
        make = partial(ix.ShortRF, V=v / ctx.mc2, freq=freq, phase=el.lag * 360.0 - 90.0, **al)
    else:
        k = 2.0 * math.pi * freq / const.c
        slope = -v / ctx.rp.p0c * k * math.cos(phase)  # d pt / d t, the same in both codes
        if kind == "buncher":
            make = partial(ix.Buncher, V=-slope / k if k else 0.0, k=k, **al)
        else:
            m = np.eye(6)
            m[5, 4] = slope
            make = partial(ix.LinearMap, R=linear_map(m), ds=0.0, **al)
    _thin_in_drifts(ctx, el, al, make)


def _nonlinear_lens(ctx, el, al):
    from impactx import elements as ix

    ctx.add(el.name, partial(ix.NonlinearLens, knll=el.knll, cnll=el.cnll, **al))


def _aperture_element(ctx, el, al):
    from impactx import elements as ix

    if not ctx.config.install_apertures:
        ctx.add(el.name, ix.Marker)
        return
    shape = "rectangular" if el.element_name == "RectangularAperture" else "elliptical"
    ctx.add(el.name, partial(ix.Aperture, aperture_x=el.a, aperture_y=el.b, shape=shape))


def _field_map(ctx, el, al):
    raise _unsupported(el, "JACC integrates its on-axis field numerically; ImpactX's SoftSolenoid "
                           "takes Fourier coefficients of another field model")


_BUILDERS = {
    "Drift": _drift, "Marker": _marker, "Monitor": _monitor, "Quadrupole": _quadrupole,
    "SBend": _sbend, "RBend": _rbend, "DipoleEdge": _dipole_edge, "Sextupole": _sextupole,
    "Octupole": _octupole, "Multipole": _multipole, "HKicker": _kicker, "VKicker": _kicker,
    "HVCorrector": _kicker, "Solenoid": _solenoid, "RFCavity": _rf_cavity,
    "NonlinearLens": _nonlinear_lens, "RectangularAperture": _aperture_element,
    "EllipticalAperture": _aperture_element, "FieldMap": _field_map,
}
