"""MAD-X element types and attributes and their JACC counterparts (shared by import and export).

A field maps to ``(MAD-X attribute, scale)`` with ``jacc value = scale * madx value``: MAD-X
gives ``volt`` in MV and ``freq`` in MHz where JACC uses V and Hz, and ``hgap`` is half of
JACC's full ``gap``.
"""

from __future__ import annotations

# MAD-X base type -> JACC element type. Instruments are diagnostics, read out like monitors;
# placeholders and collimators become drifts (thick) or markers (thin) with their aperture.
# The MAD-X type is kept in ``extra["madx"]["type"]`` where the JACC type would export as another.
MADX_TYPES: dict[str, str] = {
    "drift": "Drift",
    "marker": "Marker",
    "monitor": "Monitor",
    "hmonitor": "Monitor",
    "vmonitor": "Monitor",
    "instrument": "Monitor",
    "placeholder": "Drift",
    "collimator": "Drift",
    "rcollimator": "Drift",
    "ecollimator": "Drift",
    "quadrupole": "Quadrupole",
    "sbend": "SBend",
    "rbend": "RBend",
    "dipedge": "DipoleEdge",
    "sextupole": "Sextupole",
    "octupole": "Octupole",
    "multipole": "Multipole",
    "hkicker": "HKicker",
    "vkicker": "VKicker",
    "kicker": "HVCorrector",
    "tkicker": "HVCorrector",
    "solenoid": "Solenoid",
    "rfcavity": "RFCavity",
    "nllens": "NonlinearLens",
}
# MAD-X types that keep their name in extra (the JACC type alone would export as another).
KEEP_MADX_TYPE = {"hmonitor", "vmonitor", "instrument", "placeholder", "collimator",
                  "rcollimator", "ecollimator", "tkicker"}

_BEND = {
    "angle": ("angle", 1.0), "k1": ("k1", 1.0), "k2": ("k2", 1.0), "e1": ("e1", 1.0),
    "e2": ("e2", 1.0), "fint": ("fint", 1.0), "fintx": ("fintx", 1.0), "gap": ("hgap", 2.0),
    "h_pole1": ("h1", 1.0), "h_pole2": ("h2", 1.0),
}
# JACC type -> {JACC field: (MAD-X attribute, scale)}; "l" and "tilt" are common to all.
FIELDS: dict[str, dict[str, tuple[str, float]]] = {
    "Drift": {}, "Marker": {}, "Monitor": {},
    "Quadrupole": {"k1": ("k1", 1.0), "k1s": ("k1s", 1.0)},
    "SBend": _BEND,
    "RBend": _BEND,
    "DipoleEdge": {"h": ("h", 1.0), "e1": ("e1", 1.0), "gap": ("hgap", 2.0), "fint": ("fint", 1.0)},
    "Sextupole": {"k2": ("k2", 1.0), "k2s": ("k2s", 1.0)},
    "Octupole": {"k3": ("k3", 1.0), "k3s": ("k3s", 1.0)},
    "Multipole": {"knl": ("knl", 1.0), "ksl": ("ksl", 1.0), "lrad": ("lrad", 1.0),
                  "angle": ("angle", 1.0)},
    "HKicker": {"xangle": ("kick", 1.0)},
    "VKicker": {"yangle": ("kick", 1.0)},
    "HVCorrector": {"xangle": ("hkick", 1.0), "yangle": ("vkick", 1.0)},
    "Solenoid": {"ks": ("ks", 1.0)},
    "RFCavity": {"voltage": ("volt", 1e6), "frequency": ("freq", 1e6), "harmon": ("harmon", 1.0),
                 "lag": ("lag", 1.0)},
    "NonlinearLens": {"knll": ("knll", 1.0), "cnll": ("cnll", 1.0)},
}
# JACC type -> MAD-X keyword used on export.
EXPORT_TYPES: dict[str, str] = {
    "Drift": "drift", "Marker": "marker", "Monitor": "monitor", "Quadrupole": "quadrupole",
    "SBend": "sbend", "RBend": "rbend", "DipoleEdge": "dipedge", "Sextupole": "sextupole",
    "Octupole": "octupole", "Multipole": "multipole", "HKicker": "hkicker", "VKicker": "vkicker",
    "HVCorrector": "kicker", "Solenoid": "solenoid", "RFCavity": "rfcavity",
    "NonlinearLens": "nllens", "RectangularAperture": "marker", "EllipticalAperture": "marker",
}

# Attributes that carry no physics for JACC (bookkeeping, PTC integration settings): dropped.
IGNORED = {
    "at", "from", "l", "tilt", "apertype", "aperture", "slot_id", "assembly_id", "mech_sep",
    "v_pos", "magnet", "comments", "slice", "slice_straight", "thick", "model", "method", "exact",
    "nst", "kmax", "kmin", "calib", "polarity", "type", "aper_vx", "aper_vy", "aper_tol",
    "xsize", "ysize", "dx", "dy", "dpsi", "fringe", "kill_ent_fringe", "kill_exi_fringe",
    "frngmax", "f1", "f2", "fcsr", "n_bessel", "no_cavity_totalpath",
}

# MAD-X's predefined constants: inlined as numbers in expressions, never knobs.
MADX_CONSTANTS = {"pi", "twopi", "degrad", "raddeg", "e", "amu0", "emass", "mumass", "nmass",
                  "umass", "pmass", "clight", "qelect", "hbar", "erad", "prad", "version",
                  "twiss_tol"}

# Apertures JACC models; MAD-X ``aperture`` holds (a,) for a circle and (a, b) otherwise.
APERTURES = {"circle", "rectangle", "ellipse"}
