"""One JACC element <-> one PALS element (the dict form of a PALS file), both directions.

Used by :mod:`jacc.lattice.io_pals`, where the rules are listed. What a PALS element cannot
hold goes into its ``jacc`` extension key, which pals-schema ignores and `from_pals` reads.
"""

from __future__ import annotations

import math
from typing import Any

from ._lattice_text import short
from .base import Aperture, Element, LatticeError
from .elements import ELEMENTS_BY_NAME

__all__ = ["element_from_pals", "element_to_pals", "NO_PALS_KIND", "SILENT_EXTENSION"]

# PALS kind written for each JACC type (a Marker or Drift carries the type in the extension).
KIND = {
    "Drift": "Drift", "Marker": "Marker", "Monitor": "Instrument", "Quadrupole": "Quadrupole",
    "SBend": "SBend", "RBend": "RBend", "DipoleEdge": "Marker", "Sextupole": "Sextupole",
    "Octupole": "Octupole", "Multipole": "Multipole", "HKicker": "Kicker", "VKicker": "Kicker",
    "HVCorrector": "Kicker", "Solenoid": "Solenoid", "RFCavity": "RFCavity",
    "NonlinearLens": "Marker", "FieldMap": "Drift", "NonlinearInsertField": "Drift",
    "RectangularAperture": "Marker", "EllipticalAperture": "Marker",
}
# PALS kind -> JACC type when the extension does not say.
FROM_KIND = {"Drift": "Drift", "Marker": "Marker", "Instrument": "Monitor",
             "Quadrupole": "Quadrupole", "SBend": "SBend", "RBend": "RBend",
             "Sextupole": "Sextupole", "Octupole": "Octupole", "Multipole": "Multipole",
             "Kicker": "HVCorrector", "Solenoid": "Solenoid", "RFCavity": "RFCavity",
             "NullEle": "Marker", "BeginningEle": "Marker", "Fiducial": "Marker"}
_ORDER = {"Quadrupole": 1, "Sextupole": 2, "Octupole": 3}
# JACC types without a PALS kind: written as the Marker or Drift of KIND, the physics in the
# extension.
NO_PALS_KIND = ("DipoleEdge", "NonlinearLens", "FieldMap", "NonlinearInsertField")
# Extension keys that only make the round trip exact (PALS holds the physics): no warning.
SILENT_EXTENSION = {"element_name", "angle", "fint", "fintx", "gap", "lag", "aperture_shape",
                    "placement_of", "overrides", "knl_len", "ksl_len", "l"}


def _mm(el: Element, ext: dict) -> dict[str, float]:
    """MagneticMultipoleP of a magnet (normalised strengths; tiltN carries the roll)."""
    kind = el.element_name
    out: dict[str, float] = {}
    if kind in _ORDER:
        n = _ORDER[kind]
        out[f"Kn{n}"], out[f"Ks{n}"] = getattr(el, f"k{n}"), getattr(el, f"k{n}s")
        if el.tilt:
            out[f"tilt{n}"] = el.tilt
    elif kind in ("SBend", "RBend"):
        out["Kn1"], out["Kn2"] = el.k1, el.k2
    elif kind == "Multipole":
        for i, v in enumerate(el.knl):
            out[f"Kn{i}L"] = v
        for i, v in enumerate(el.ksl):
            out[f"Ks{i}L"] = v
        orders = sorted({int(k[2:-1]) for k in out})
        if el.tilt and orders:
            out.update({f"tilt{i}": el.tilt for i in orders})
        elif el.tilt:
            ext["tilt"] = el.tilt
        ext["knl_len"], ext["ksl_len"] = len(el.knl), len(el.ksl)
        if el.angle is not None:
            ext["angle"] = el.angle  # the reference bend when it is not knl[0]
        if el.lrad:
            ext["lrad"] = el.lrad
    elif kind in ("HKicker", "VKicker", "HVCorrector"):
        # MAD-X/Bmad sign: a positive Kn0L kicks towards -x, a positive Ks0L towards +y
        out["Kn0L"], out["Ks0L"] = -el.xangle, el.yangle
        if el.tilt:
            out["tilt0"] = el.tilt
    return out


def _bend(el: Element, ext: dict) -> dict[str, Any]:
    arc = el.path_length
    bp = {"g_ref": el.angle / arc if arc else 0.0, "h1": el.h_pole1, "h2": el.h_pole2,
          "edge_int1": el.fint * el.gap, "edge_int2": el.fintx * el.gap, "tilt_ref": el.tilt}
    if el.element_name == "RBend":
        bp.update(e1_rect=el.e1, e2_rect=el.e2, e1=el.e1 + el.angle / 2, e2=el.e2 + el.angle / 2,
                  L_chord=el.l)
    else:
        bp.update(e1=el.e1, e2=el.e2)
    ext.update(angle=el.angle, fint=el.fint, fintx=el.fintx, gap=el.gap)
    return bp


def _aperture_p(ap: Aperture, ext: dict) -> dict[str, Any]:
    if ap.shape == "circle":
        ext["aperture_shape"] = "circle"
    return {"shape": "RECTANGULAR" if ap.shape == "rectangle" else "ELLIPTICAL",
            "x_limits": [-ap.a, ap.a], "y_limits": [-ap.b, ap.b]}


def element_to_pals(el: Element) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(PALS properties, extension)`` of one element (the name is the caller's key)."""
    kind = el.element_name
    pk = KIND[kind]
    d: dict[str, Any] = {"kind": pk}
    ext: dict[str, Any] = {}
    if FROM_KIND.get(pk) != kind:
        ext["element_name"] = kind
    if pk != "Marker":
        d["length"] = el.path_length
    mm = _mm(el, ext)
    if mm:
        d["MagneticMultipoleP"] = mm
    if kind in ("SBend", "RBend"):
        d["BendP"] = _bend(el, ext)
    elif kind == "Solenoid":
        d["SolenoidP"] = {"Ksol": el.ks}
    elif kind == "RFCavity":
        phase = 2 * math.pi * el.lag
        d["RFP"] = {"frequency": el.frequency, "harmon": el.harmon, "voltage": el.voltage,
                    "phase": phase}
        if phase / (2 * math.pi) != el.lag:
            ext["lag"] = el.lag
    elif kind in ("RectangularAperture", "EllipticalAperture"):
        shape = "rectangle" if kind == "RectangularAperture" else "ellipse"
        d["ApertureP"] = _aperture_p(Aperture(shape=shape, a=el.a, b=el.b), ext)
    elif kind in NO_PALS_KIND:
        fields = {"DipoleEdge": ("h", "e1", "gap", "fint", "side"),
                  "NonlinearLens": ("knll", "cnll"), "FieldMap": ("z", "bz"),
                  "NonlinearInsertField": ("t", "c", "beta_c", "s_c", "n_steps")}[kind]
        ext.update({f: getattr(el, f) for f in fields})
    if el.aperture is not None:
        d["ApertureP"] = _aperture_p(el.aperture, ext)
    if el.dx or el.dy or el.dtilt:
        d["BodyShiftP"] = {"x_offset": el.dx, "y_offset": el.dy, "z_rot": el.dtilt}
    if el.tilt and not _tilt_written(d):
        ext["tilt"] = el.tilt
    if el.diff_params:
        ext["diff_params"] = list(el.diff_params)
    if el.extra:
        ext["extra"] = el.extra
    if kind == "RBend" and el.l:
        ext["l"] = el.l  # the chord; PALS's L_chord alone is read back too
    return d, ext


def _tilt_written(d: dict) -> bool:
    mm = d.get("MagneticMultipoleP", {})
    return any(k.startswith("tilt") for k in mm) or bool(d.get("BendP", {}).get("tilt_ref"))


def element_from_pals(name: str, d: dict[str, Any], where: str) -> Element:
    """A JACC element from a PALS element's properties (``d``, with its ``jacc`` extension)."""
    ext = dict(d.get("jacc") or {})
    pk = d.get("kind")
    kind = ext.pop("element_name", None) or FROM_KIND.get(pk)
    if kind is None:
        raise LatticeError(f"{where}: element '{name}': PALS kind {pk!r} has no JACC counterpart; "
                           f"supported: {sorted(FROM_KIND)}")
    length = float(d.get("length", 0.0) or 0.0)
    mm = dict(d.get("MagneticMultipoleP") or {})
    f: dict[str, Any] = {"name": name, "l": length}
    tilts = [v for k, v in mm.items() if k.startswith("tilt")]
    if tilts:
        f["tilt"] = float(tilts[0])
    if kind in _ORDER:
        n = _ORDER[kind]
        f[f"k{n}"] = float(mm.get(f"Kn{n}", 0.0)) + _integrated(mm, f"Kn{n}", length)
        f[f"k{n}s"] = float(mm.get(f"Ks{n}", 0.0)) + _integrated(mm, f"Ks{n}", length)
    elif kind in ("SBend", "RBend"):
        _bend_from(f, d.get("BendP") or {}, mm, ext, kind, length)
    elif kind == "Multipole":
        f["l"] = 0.0
        f["knl"] = _orders(mm, "Kn", ext.pop("knl_len", None), length)
        f["ksl"] = _orders(mm, "Ks", ext.pop("ksl_len", None), length)
        if ext.get("angle") is not None:
            f["angle"] = float(ext.pop("angle"))
    elif kind in ("HKicker", "VKicker", "HVCorrector"):
        x, y = -float(mm.get("Kn0L", 0.0)), float(mm.get("Ks0L", 0.0))
        if kind != "VKicker":
            f["xangle"] = x
        if kind != "HKicker":
            f["yangle"] = y
    elif kind == "Solenoid":
        f["ks"] = float((d.get("SolenoidP") or {}).get("Ksol", 0.0))
    elif kind == "RFCavity":
        rf = d.get("RFP") or {}
        f.update(frequency=float(rf.get("frequency", 0.0)), harmon=int(rf.get("harmon", 0)),
                 voltage=float(rf.get("voltage", 0.0)),
                 lag=ext.pop("lag", float(rf.get("phase", 0.0)) / (2 * math.pi)))
    ap = d.get("ApertureP")
    if ap:
        shape, a, b = _aperture_from(ap, ext.pop("aperture_shape", None), where, name)
        if kind in ("RectangularAperture", "EllipticalAperture"):
            f.update(a=a, b=b)
        else:
            f["aperture"] = Aperture(shape=shape, a=a, b=b)
    bs = d.get("BodyShiftP") or {}
    f.update({k: float(bs[p]) for k, p in (("dx", "x_offset"), ("dy", "y_offset"),
                                            ("dtilt", "z_rot")) if bs.get(p)})
    if ELEMENTS_BY_NAME[kind].thin:
        f["l"] = 0.0
    f.update(ext)
    try:
        return ELEMENTS_BY_NAME[kind].model_validate(f)
    except ValueError as err:
        raise LatticeError(f"{where}: element '{name}' ({pk}): {short(err)}") from None


def _integrated(mm: dict, key: str, length: float) -> float:
    v = mm.get(key + "L")
    if v is None:
        return 0.0
    if length == 0.0:
        raise LatticeError(f"an integrated strength {key}L on an element of zero length")
    return float(v) / length


def _orders(mm: dict, prefix: str, count, length: float) -> list[float]:
    vals: dict[int, float] = {}
    for k, v in mm.items():
        if k.startswith(prefix):
            n = int(k[len(prefix):].rstrip("L"))
            vals[n] = vals.get(n, 0.0) + float(v) * (1.0 if k.endswith("L") else length)
    n = count if count is not None else (max(vals) + 1 if vals else 0)
    return [vals.get(i, 0.0) for i in range(n)]


def _bend_from(f: dict, bp: dict, mm: dict, ext: dict, kind: str, length: float) -> None:
    g = float(bp.get("g_ref", 0.0))
    if kind == "RBend":
        chord = float(bp.get("L_chord", 0.0)) or ext.get("l", 0.0)
        f["l"] = chord
        angle = ext.get("angle", 2 * math.asin(g * chord / 2) if g else 0.0)
        f["e1"] = float(bp.get("e1_rect", float(bp.get("e1", 0.0)) - angle / 2))
        f["e2"] = float(bp.get("e2_rect", float(bp.get("e2", 0.0)) - angle / 2))
    else:
        angle = ext.get("angle", g * length)
        f["e1"], f["e2"] = float(bp.get("e1", 0.0)), float(bp.get("e2", 0.0))
    f["angle"] = angle
    f["tilt"] = float(bp.get("tilt_ref", f.get("tilt", 0.0)))
    f["h_pole1"], f["h_pole2"] = float(bp.get("h1", 0.0)), float(bp.get("h2", 0.0))
    f["k1"], f["k2"] = float(mm.get("Kn1", 0.0)), float(mm.get("Kn2", 0.0))
    i1, i2 = float(bp.get("edge_int1", 0.0)), float(bp.get("edge_int2", 0.0))
    if "gap" not in ext and (i1 or i2):
        # PALS gives the product fint * gap alone (all edge models use only it): fint = 1/2
        ext.update(gap=2 * max(i1, i2), fint=0.5 * i1 / max(i1, i2), fintx=0.5 * i2 / max(i1, i2))


def _aperture_from(ap: dict, shape_hint, where: str, name: str):
    (x0, x1), (y0, y1) = ap.get("x_limits", [None, None]), ap.get("y_limits", [None, None])
    if None in (x0, x1, y0, y1) or x0 != -x1 or y0 != -y1:
        raise LatticeError(f"{where}: element '{name}': aperture limits {ap.get('x_limits')}, "
                           f"{ap.get('y_limits')}: JACC models centred apertures with both limits")
    shape = {"RECTANGULAR": "rectangle", "ELLIPTICAL": "ellipse"}.get(ap.get("shape", "RECTANGULAR"))
    if shape is None:
        raise LatticeError(f"{where}: element '{name}': aperture shape {ap.get('shape')!r} "
                           "not modelled (RECTANGULAR, ELLIPTICAL)")
    return shape_hint or shape, float(x1), float(y1)
