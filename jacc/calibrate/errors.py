"""Simulated measurements: a seeded "true machine" and the ORM a control room would measure.

The truth: relative gradient errors on the quadrupoles, optional quadrupole misalignments,
BPM gains and rolls, corrector gains. The measurement: the ORM of the true lattice (``jacfwd``
of its closed orbit, `OrbitResponse`), seen through the BPM calibration and the corrector
calibration, plus Gaussian noise; optionally the dispersion at the BPMs as well.

Calibration conventions (also those of the LOCO model): a BPM with gains ``gx, gy`` and roll
``psi`` reads ``u = gx (x cos psi + y sin psi)``, ``v = gy (-x sin psi + y cos psi)``; a
corrector with gain ``c`` kicks ``c`` times its nominal kick.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from jacc.lattice import Lattice
from jacc.match._knobs import Vary, parse_knobs

from .orm import OrbitResponse, OrmLayout, select_layout


@dataclasses.dataclass(frozen=True)
class ErrorSpec:
    """RMS values of the simulated errors (Gaussian, zero mean).

    Attributes:
        quad_rel: relative gradient error of each quadrupole, ``dk1 / k1`` [1].
        quad_offset: transverse misalignment ``dx``, ``dy`` of each quadrupole [m].
        bpm_gain: relative BPM gain error, each plane [1].
        bpm_roll: BPM roll [rad].
        corrector_gain: relative corrector gain error [1].
        orm_noise: noise on each ORM entry [m/rad] (a BPM noise ``sigma_x`` with kicks of
            ``theta`` and a two-sided difference gives about ``sigma_x / (sqrt(2) theta)``).
        dispersion_noise: noise on each dispersion reading [m].
    """

    quad_rel: float = 0.01
    quad_offset: float = 0.0
    bpm_gain: float = 0.0
    bpm_roll: float = 0.0
    corrector_gain: float = 0.0
    orm_noise: float = 0.0
    dispersion_noise: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"ErrorSpec: {f.name} must be a finite rms >= 0, got {v!r}")


def quad_magnets(lat: Lattice) -> list[Vary]:
    """Every quadrupole placement with a gradient (``k1 != 0``), as ``"name:n.k1"`` parameters."""
    out = [Vary(p.key, "k1") for p in lat.elements if p.element_name == "Quadrupole" and p.k1 != 0]
    if not out:
        raise ValueError(f"lattice '{lat.name}' has no quadrupole with k1 != 0")
    return out


def quad_knobs(lat: Lattice) -> list[Vary]:
    """Lattice knobs that drive quadrupole ``k1`` (IOTA's ``kq01..kq20``)."""
    out = []
    for name in lat.knobs:
        deps = lat.knob_dependents(name)
        if any(f == "k1" and lat.definitions[d].element_name == "Quadrupole" for d, f in deps):
            out.append(Vary(name))
    if not out:
        raise ValueError(f"lattice '{lat.name}' has no knob driving a quadrupole k1")
    return out


def resolve_quads(lat: Lattice, quads) -> list[Vary]:
    """``quads`` (None: every quadrupole magnet) as `Vary` objects, checked against ``lat``."""
    from jacc.match._knobs import check_knobs

    varies = quad_magnets(lat) if quads is None else parse_knobs(list(quads))
    check_knobs(lat, varies)
    return varies


@dataclasses.dataclass(frozen=True)
class TrueErrors:
    """The seeded truth of a simulated machine.

    Attributes:
        quads: quadrupole parameters (`Vary`), ``quad_rel`` their relative errors.
        quad_dx, quad_dy: misalignments of those quadrupoles [m] (zero if not drawn).
        layout: BPMs and correctors.
        bpm_gain_x, bpm_gain_y: BPM gains [1] (1 = perfect); ``bpm_roll`` [rad].
        corrector_gain_h, corrector_gain_v: corrector gains [1].
    """

    quads: tuple[Vary, ...]
    quad_rel: np.ndarray
    quad_dx: np.ndarray
    quad_dy: np.ndarray
    layout: OrmLayout
    bpm_gain_x: np.ndarray
    bpm_gain_y: np.ndarray
    bpm_roll: np.ndarray
    corrector_gain_h: np.ndarray
    corrector_gain_v: np.ndarray

    @property
    def corrector_gain(self) -> np.ndarray:
        """Gains of the ORM columns: horizontal kicks then vertical kicks."""
        return np.concatenate([self.corrector_gain_h, self.corrector_gain_v])

    def apply(self, lat: Lattice) -> Lattice:
        """A copy of ``lat`` with the quadrupole errors (and misalignments) in force."""
        from jacc.match._knobs import apply_values, current_values

        k0 = np.array(current_values(lat, list(self.quads)))
        out = apply_values(lat, list(self.quads), k0 * (1.0 + self.quad_rel))
        if np.any(self.quad_dx) or np.any(self.quad_dy):
            for v, dx, dy in zip(self.quads, self.quad_dx, self.quad_dy):
                if v.field is None or ":" not in v.name:
                    raise ValueError("misalignments need quadrupoles given per placement ('name:n.k1')")
                p = out[v.name]
                p.dx, p.dy = float(dx), float(dy)
        return out


def draw_errors(lat: Lattice, spec: ErrorSpec, seed: int, *, quads=None, bpms=None,
                correctors=None, layout: OrmLayout | None = None) -> TrueErrors:
    """Draw a seeded set of errors for ``lat`` (quadrupoles default: every magnet with k1)."""
    rng = np.random.default_rng(seed)
    q = resolve_quads(lat, quads)
    lay = select_layout(lat, bpms, correctors) if layout is None else layout
    nq, nb = len(q), lay.n_bpms
    nh, nv = len(lay.hcorrectors), len(lay.vcorrectors)
    # one draw per quantity in a fixed order: changing one rms leaves the others' draws alone
    return TrueErrors(
        quads=tuple(q),
        quad_rel=spec.quad_rel * rng.standard_normal(nq),
        quad_dx=spec.quad_offset * rng.standard_normal(nq),
        quad_dy=spec.quad_offset * rng.standard_normal(nq),
        layout=lay,
        bpm_gain_x=1.0 + spec.bpm_gain * rng.standard_normal(nb),
        bpm_gain_y=1.0 + spec.bpm_gain * rng.standard_normal(nb),
        bpm_roll=spec.bpm_roll * rng.standard_normal(nb),
        corrector_gain_h=1.0 + spec.corrector_gain * rng.standard_normal(nh),
        corrector_gain_v=1.0 + spec.corrector_gain * rng.standard_normal(nv),
    )


def bpm_reading(orbit, gain_x, gain_y, roll, xp=np):
    """What BPMs read for an orbit ``(x at BPMs, y at BPMs)`` stacked on axis 0 (shape (2 nb, ...))."""
    nb = gain_x.shape[0]
    x, y = orbit[:nb], orbit[nb:]
    shape = (nb,) + (1,) * (x.ndim - 1)
    c, s = xp.cos(roll).reshape(shape), xp.sin(roll).reshape(shape)
    u = gain_x.reshape(shape) * (c * x + s * y)
    v = gain_y.reshape(shape) * (-s * x + c * y)
    return xp.concatenate([u, v], axis=0)


@dataclasses.dataclass(frozen=True)
class Measurement:
    """A (simulated) ORM measurement.

    Attributes:
        orm: measured ORM (2 n_bpms, n_kicks) [m/rad]: rows x then y, columns h then v kicks.
        orm_sigma: its noise rms [m/rad] (0: noise-free).
        dispersion: measured dispersion (2 n_bpms,) [m], or None.
        dispersion_sigma: its noise rms [m].
        layout: BPMs and correctors.
        truth: the errors behind it (None for a real measurement).
        orm_true: the ORM of the true machine before calibration errors and noise.
    """

    orm: np.ndarray
    orm_sigma: float
    dispersion: np.ndarray | None
    dispersion_sigma: float
    layout: OrmLayout
    truth: TrueErrors | None = None
    orm_true: np.ndarray | None = None


class MeasurementSimulator:
    """Simulated ORM measurements of one lattice, compiled once for many seeds.

    The quadrupole gradients (and, with misalignments, their offsets) are parameters of one
    compiled `OrbitResponse`, so each new seed only re-evaluates it.

    Args:
        lat, rp: the design lattice and reference particle.
        quads: quadrupoles that get errors (default: every magnet with k1 != 0).
        bpms, correctors, layout: see `jacc.calibrate.orm.select_layout`.
        misalign: also make the quadrupole offsets parameters (for ``quad_offset > 0``;
            needs quadrupoles given per placement).
        model: engine preset (default `jacc.calibrate.orm.default_model`).
    """

    def __init__(self, lat: Lattice, rp, *, quads=None, bpms=None, correctors=None,
                 layout: OrmLayout | None = None, misalign: bool = False, model=None):
        import jax

        self.lattice = lat
        self.quads = resolve_quads(lat, quads)
        self.layout = select_layout(lat, bpms, correctors) if layout is None else layout
        vary = list(self.quads)
        self.misalign = bool(misalign)
        if self.misalign:
            if any(v.field is None or ":" not in v.name for v in self.quads):
                raise ValueError("misalignments need quadrupoles given per placement ('name:n.k1')")
            vary += [Vary(v.name, "dx") for v in self.quads] + [Vary(v.name, "dy") for v in self.quads]
        self.response = OrbitResponse(lat, rp, layout=self.layout, vary=vary, model=model)
        r = self.response
        self.k0 = np.array([float(r.dynamic[v.key]) for v in self.quads])
        self._orm = jax.jit(r.orm)
        self._disp = jax.jit(r.dispersion)

    def dynamic(self, truth: TrueErrors) -> dict:
        """Engine parameters of the true machine."""
        d = dict(self.response.dynamic)
        for v, k, e in zip(self.quads, self.k0, truth.quad_rel):
            d[v.key] = k * (1.0 + e)
        if np.any(truth.quad_dx) or np.any(truth.quad_dy):
            if not self.misalign:
                raise ValueError("these errors have misalignments: build the simulator with misalign=True")
            for v, dx, dy in zip(self.quads, truth.quad_dx, truth.quad_dy):
                d[f"{v.name}.dx"], d[f"{v.name}.dy"] = dx, dy
        return d

    def simulate(self, spec: ErrorSpec, seed: int, *, dispersion: bool = True,
                 errors: TrueErrors | None = None) -> Measurement:
        """One measurement with errors drawn from ``seed`` (or the given ``errors``)."""
        truth = draw_errors(self.lattice, spec, seed, quads=self.quads, layout=self.layout) \
            if errors is None else errors
        d = self.dynamic(truth)
        m_true = np.asarray(self._orm(d))
        noise = np.random.default_rng([seed, 1])
        m = bpm_reading(m_true, truth.bpm_gain_x, truth.bpm_gain_y, truth.bpm_roll) * truth.corrector_gain[None, :]
        m = m + spec.orm_noise * noise.standard_normal(m.shape)
        disp = None
        if dispersion:
            d_true = np.asarray(self._disp(d))
            disp = bpm_reading(d_true, truth.bpm_gain_x, truth.bpm_gain_y, truth.bpm_roll)
            disp = disp + spec.dispersion_noise * noise.standard_normal(disp.shape)
        return Measurement(m, spec.orm_noise, disp, spec.dispersion_noise, self.layout, truth, m_true)


def simulate_measurement(lat: Lattice, rp, spec: ErrorSpec, seed: int, *, quads=None, bpms=None,
                         correctors=None, dispersion: bool = True, model=None,
                         errors: TrueErrors | None = None) -> Measurement:
    """Simulate an ORM measurement of ``lat`` with seeded errors (see `MeasurementSimulator`,
    which compiles once for many seeds).

    Args:
        lat, rp: the design lattice and reference particle.
        spec: error rms values (`ErrorSpec`).
        seed: seed of the errors and of the noise.
        quads: quadrupoles that get gradient errors (default: every magnet with k1 != 0).
        bpms, correctors: see `jacc.calibrate.orm.select_layout`.
        dispersion: also measure the dispersion at the BPMs.
        model: engine preset (default `jacc.calibrate.orm.default_model`).
        errors: use these errors instead of drawing them.
    """
    misalign = bool(spec.quad_offset > 0 or (errors is not None and (np.any(errors.quad_dx) or np.any(errors.quad_dy))))
    kw = dict(quads=quads if errors is None else list(errors.quads), bpms=bpms, correctors=correctors,
              layout=None if errors is None else errors.layout, misalign=misalign, model=model)
    key = _simulator_key(lat, rp, kw)
    sim = _SIMULATORS.pop(key, None) if key is not None else None
    if sim is None:
        sim = MeasurementSimulator(lat, rp, **kw)
    else:
        sim.lattice = lat  # equal values; errors are drawn for this one
    if key is not None:
        _SIMULATORS[key] = sim  # most recent last
        while len(_SIMULATORS) > 4:
            _SIMULATORS.pop(next(iter(_SIMULATORS)))
    return sim.simulate(spec, seed, dispersion=dispersion, errors=errors)


# Simulators of recent `simulate_measurement` calls: the same lattice (all values), quadrupoles,
# layout and model simulate new seeds without compiling again.
_SIMULATORS: dict = {}


def _simulator_key(lat: Lattice, rp, kw: dict):
    from jacc.engine.cache import preset_key

    try:
        key = (lat.to_json(), rp.reference(), repr(kw["quads"]), repr(kw["bpms"]), repr(kw["correctors"]),
               kw["layout"], kw["misalign"], None if kw["model"] is None else preset_key(kw["model"]))
        hash(key)
        return key
    except TypeError:  # unhashable pieces: no caching
        return None
