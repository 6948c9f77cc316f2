"""The ring's physics for the twin: closed orbit at the BPMs, turn-by-turn data, optics, ORM.

One `RingPhysics` per species holds the compiled programs, shared by every twin of that
species: the machine's state is a vector of parameters (corrector knobs, quadrupole knobs,
quadrupole misalignments), an argument of the programs, so that a write, a new error seed
or a reset never recompiles.

- Closed orbit (4D, RF off, at a momentum offset ``delta`` that the RF frequency sets):
  Newton iteration on the one-turn map inside one program; the
  one-turn Jacobian comes from central differences of a batch of nine particles tracked
  together with the orbit guess (a batch costs about what one particle costs), so each
  Newton step is one tracking pass. Starting from the last orbit, two or three passes
  converge to 1e-14 m: a write costs milliseconds.
- Turn-by-turn BPM data: `jacc.engine`'s turn tracker about the closed orbit.
- Tunes, chromaticities, momentum compaction, dispersion at the BPMs: `jacc.twiss` of the
  machine's lattice (same preset).
- RF: the revolution frequency, the harmonic number and the cavity give the momentum offset
  of an RF frequency change, ``delta = -(df/f) / eta`` (slip factor ``eta = alpha_c -
  1/gamma0^2``), and the synchrotron tune of a voltage and phase (`synchrotron_tune`).

`jacc_twin.models.RingOrbitModel` and its siblings are these programs as pipeline stages.
- Orbit response matrix: `jacc.calibrate.LinearResponse` of the lattice at the machine's
  quadrupole settings (about the reference orbit).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

import jacc

__all__ = ["OrbitSolution", "RingPhysics", "preset", "synchrotron_tune"]

_STEP = 1e-6  # [m, rad] central-difference step of the Jacobian: error ~ step^2 * third order
_TOL = 1e-14  # [m] one-turn mismatch where Newton stops
_MAX_ITER = 25
_C_LIGHT = 299792458.0  # [m/s]


def preset():
    """Element models of the twin: Xsuite's with exact dipole flows (the response matrices'
    default, `jacc.calibrate.orm.default_model`), about 14x quicker to track on IOTA."""
    return jacc.XsuiteExactBend()


@dataclasses.dataclass(frozen=True)
class OrbitSolution:
    """A closed orbit.

    Attributes:
        z0: ``(x, px, y, py)`` at the ring start [m, rad].
        x, y: orbit at the BPMs [m].
        residual: one-turn mismatch ``max |F(z) - z|`` [m, rad]; iterations: Newton steps.
        alive: the orbit passed the apertures; jacobian: the 4x4 one-turn matrix.
    """

    z0: np.ndarray
    x: np.ndarray
    y: np.ndarray
    residual: float
    iterations: int
    alive: bool
    jacobian: np.ndarray

    @property
    def stable(self) -> bool:
        """The linear motion about the orbit is bounded (one-turn eigenvalues on the unit circle)."""
        j = self.jacobian
        return bool(np.all(np.isfinite(j)) and np.max(np.abs(np.linalg.eigvals(j))) < 1.0 + 1e-6)

    @property
    def ok(self) -> bool:
        """A closed orbit that exists: converged, inside the apertures, stable."""
        return bool(self.alive and np.isfinite(self.residual) and self.residual < 1e-9 and self.stable)

    def problem(self) -> str:
        """Why the orbit is not ``ok`` (empty when it is)."""
        if not self.alive:
            return "the closed-orbit search lost the beam on an aperture"
        if not (np.isfinite(self.residual) and self.residual < 1e-9):
            return f"no closed orbit (Newton mismatch {self.residual:.3g} after {self.iterations} steps)"
        if not self.stable:
            return f"unstable optics (one-turn eigenvalue moduli {np.abs(np.linalg.eigvals(self.jacobian)).round(6)})"
        return ""


class RingPhysics:
    """Compiled physics of the embedded IOTA ring for one species.

    Args:
        species: ``"electron"`` or ``"proton"`` (`jacc.lattices.iota`).

    Attributes:
        lattice, rp: the design lattice and reference particle.
        bpms: BPM placement keys; correctors: corrector placement keys (H/V correctors).
        keys: parameter names of the state vector: corrector knobs (``hk_*``, ``vk_*``),
            quadrupole knobs (``kq01``...), quadrupole misalignments (``"qa1r:1.dx"``...).
        base: the design values of ``keys``.
    """

    def __init__(self, species: str = "electron"):
        from jacc.calibrate.errors import quad_knobs, quad_magnets
        from jacc.match._knobs import flagged_copy, parse_knobs

        self.species = species
        self.lattice, self.rp = jacc.lattices.iota(species=species)
        lat = self.lattice
        self.bpms = [p.key for p in lat.elements if p.element_name == "Monitor"]
        self.bpm_index = np.array([p.index for p in lat.elements if p.element_name == "Monitor"])
        self.bpm_s = np.array([p.s_mid for p in lat.elements if p.element_name == "Monitor"])
        self.correctors = [p.key for p in lat.elements if p.element_name == "HVCorrector"]
        self.corrector_knobs = {}  # (placement key, "xangle"|"yangle") -> knob
        for name in lat.knobs:
            for el, field in lat.knob_dependents(name):
                if field in ("xangle", "yangle") and f"{el}:1" in self.correctors:
                    self.corrector_knobs[(f"{el}:1", field)] = name
        kicks = [self.corrector_knobs[(c, f)] for f in ("xangle", "yangle") for c in self.correctors]
        self.quad_knobs = [v.name for v in quad_knobs(lat)]
        self.quads = [v.name for v in quad_magnets(lat)]
        mis = [f"{q}.{f}" for f in ("dx", "dy") for q in self.quads]
        self.keys = kicks + self.quad_knobs + mis
        self.index = {k: i for i, k in enumerate(self.keys)}
        flagged = flagged_copy(lat, parse_knobs(self.keys))
        engine = jacc.TrackingEngine(flagged, self.rp, preset())
        self.spec, _, dyn = engine.make_model()
        self.base = np.array([float(dyn[k]) for k in self.keys])
        self._orbit = self._tbt = None
        self._orm = None

    @staticmethod
    @functools.lru_cache(maxsize=None)
    def shared(species: str = "electron") -> "RingPhysics":
        """The process's `RingPhysics` of ``species`` (its programs compile once)."""
        return RingPhysics(species)

    # ------------------------------------------------------------------ programs
    def _table(self, vec):
        from jacc.engine.tracker import table_from_dynamic
        from jacc.optics.one_turn import rf_off

        return rf_off(self.spec, table_from_dynamic(self.spec, {k: vec[i] for i, k in enumerate(self.keys)}))

    def orbit_outputs(self, vec, guess=None, delta=0.0) -> dict:
        """The closed-orbit program's outputs (the ``orbit`` stage's ports): ``z0``, ``bpm_x``,
        ``bpm_y``, ``residual``, ``iterations``, ``alive``, ``jacobian`` (see `closed_orbit`)."""
        if self._orbit is None:
            self._orbit = jax.jit(_orbit_program(self))
        z = np.zeros(4) if guess is None else np.asarray(guess, float)
        z, x, y, res, it, alive, jac = self._orbit(np.asarray(vec, float), z, np.float64(delta))
        return {"z0": z, "bpm_x": x, "bpm_y": y, "residual": res, "iterations": it, "alive": alive,
                "jacobian": jac}

    def closed_orbit(self, vec, guess=None, delta: float = 0.0) -> OrbitSolution:
        """Closed orbit of the machine with parameters ``vec`` at momentum offset ``delta``
        (start the search at ``guess``, ``(x, px, y, py)`` at the ring start; default: the
        reference orbit)."""
        return solution_from(self.orbit_outputs(vec, guess, delta))

    def pt(self, delta: float) -> float:
        """MAD-X ``pt`` of a momentum offset ``delta`` for this species."""
        from jacc.particles import pt_from_delta

        return float(pt_from_delta(np.float64(delta), self.rp.beta0))

    def turn_by_turn(self, vec, x0, n_turns: int):
        """BPM positions ``(x, y)``, each (n_turns, n_bpms) [m], of one particle starting at
        ``x0`` (6,) at the ring start, turn after turn (RF off, as the 4D closed orbit)."""
        if self._tbt is None:
            from jacc.engine.tracker import make_turn_tracker

            run = make_turn_tracker(self.spec, record="centroid", monitor_at=self.bpm_index,
                                    checkpoint=False, chunk=None)

            def tbt(vec, x0, n_turns):
                c = run(self._table(vec), x0[None, :], jnp.ones(1, bool), n_turns).monitors.centroid
                return c[:, :, 0], c[:, :, 2]

            self._tbt = jax.jit(tbt, static_argnums=(2,))
        x, y = self._tbt(np.asarray(vec, float), np.asarray(x0, float), int(n_turns))
        return np.asarray(x), np.asarray(y)

    def lattice_at(self, vec) -> "jacc.Lattice":
        """A copy of the lattice with the parameters ``vec`` in force."""
        lat = self.lattice.copy()
        for k, v in zip(self.keys, np.asarray(vec, float)):
            if k in lat.knobs:
                lat.set_knob(k, float(v))
            else:
                el, field = k.rsplit(".", 1)
                if v != 0.0:
                    setattr(lat[el], field, float(v))
        return lat

    def optics(self, vec, full: bool = False) -> dict:
        """Tunes and chromaticities (`jacc.twiss`, 4D) of the machine: ``qx, qy, dqx, dqy``;
        with ``full``, also ``momentum_compaction``, ``slip_factor``, ``revolution_frequency``
        [Hz] and the dispersion ``disp_x``, ``disp_y`` at the BPMs [m]."""
        tw = jacc.twiss(self.lattice_at(vec), self.rp, method="4d", model=preset())
        out = {k: float(getattr(tw, k)) for k in ("qx", "qy", "dqx", "dqy")}
        if full:
            ac = float(tw.momentum_compaction)
            out.update(momentum_compaction=ac, slip_factor=ac - 1.0 / self.rp.gamma0 ** 2,
                       revolution_frequency=self.revolution_frequency,
                       disp_x=np.asarray(tw.dx)[self.bpm_index], disp_y=np.asarray(tw.dy)[self.bpm_index])
        return out

    @property
    def revolution_frequency(self) -> float:
        """Revolution frequency of the reference particle [Hz]."""
        return self.rp.beta0 * _C_LIGHT / self.lattice.length

    @property
    def harmonic(self) -> int:
        """Harmonic number of the RF cavity ``rfc``."""
        return int(self.lattice["rfc"].harmon)

    @property
    def rf_frequency(self) -> float:
        """Design RF frequency [Hz]: harmonic number times revolution frequency."""
        return self.harmonic * self.revolution_frequency

    def orm(self, vec) -> np.ndarray:
        """Orbit response matrix (2 n_bpms, 2 n_correctors) [m/rad] at the quadrupole settings
        of ``vec`` (`jacc.calibrate.LinearResponse`, about the reference orbit): rows ``x``
        then ``y`` at the BPMs, columns the horizontal then the vertical kicks."""
        from jacc.calibrate import LinearResponse, OrbitResponse

        if self._orm is None:
            r = OrbitResponse(self.lattice, self.rp, bpms=self.bpms, correctors=self.correctors,
                              vary=self.quad_knobs, model=preset())
            self._orm = LinearResponse(r)
        lr = self._orm
        d = dict(lr.dynamic)
        for k in self.quad_knobs:
            d[k] = jnp.asarray(vec[self.index[k]], dtype=jnp.float64)
        return np.asarray(lr.orm(d))


def _orbit_program(ring: RingPhysics):
    """``f(vec, z, delta) -> (z0, x_bpm, y_bpm, residual, iterations, alive, jacobian)``."""
    from jacc.engine.tracker import make_turn_tracker

    run = make_turn_tracker(ring.spec, record="coordinates", monitor_at=ring.bpm_index,
                            checkpoint=False, chunk=None)
    eye = jnp.eye(4)
    offsets = jnp.concatenate([jnp.zeros((1, 4)), _STEP * eye, -_STEP * eye])  # (9, 4)

    def one_pass(table, z, pt):
        x0 = jnp.zeros((9, 6)).at[:, :4].set(z[None, :] + offsets).at[:, 5].set(pt)
        r = run(table, x0, jnp.ones(9, bool), 1)
        f = r.x[:, :4]
        jac = (f[1:5] - f[5:9]).T / (2 * _STEP)
        mon = r.monitors.coordinates[0, :, 0]  # (n_bpms, 6) of the orbit guess
        return f[0], jac, mon, jnp.all(r.alive)

    def prog(vec, z, delta):
        from jacc.particles import pt_from_delta

        table = ring._table(vec)
        pt = pt_from_delta(delta, ring.rp.beta0)

        def body(c):
            z, _, _, _, _, it = c
            fz, jac, mon, alive = one_pass(table, z, pt)
            res = jnp.max(jnp.abs(fz - z))
            z_new = z - jnp.linalg.solve(jac - eye, fz - z)
            return z_new, z, res, jac, (mon, alive), it + 1

        def cond(c):
            _, _, res, _, (_, alive), it = c
            going = (res > _TOL) & (it < _MAX_ITER) & alive & jnp.isfinite(res)
            return (it == 0) | going

        n = ring.bpm_index.size
        init = (z, z, jnp.inf, jnp.zeros((4, 4)), (jnp.zeros((n, 6)), jnp.array(True)), 0)
        _, z_at, res, jac, (mon, alive), it = jax.lax.while_loop(cond, body, init)
        return z_at, mon[:, 0], mon[:, 2], res, it, alive, jac

    return prog


def solution_from(out: dict) -> OrbitSolution:
    """The `OrbitSolution` of the ``orbit`` stage's outputs."""
    return OrbitSolution(np.asarray(out["z0"]), np.asarray(out["bpm_x"]), np.asarray(out["bpm_y"]),
                         float(out["residual"]), int(out["iterations"]), bool(out["alive"]),
                         np.asarray(out["jacobian"]))


def synchrotron_tune(voltage: float, phase_deg: float, harmonic: int, slip_factor: float, rp) -> float:
    """Small-amplitude synchrotron tune ``Qs = sqrt(h |q| V |eta cos(phi_s)| / (2 pi beta0^2 E0))``
    of a cavity of peak ``voltage`` [V] at phase ``phase_deg`` [deg] (MAD-X ``lag * 360``:
    ``phi_s = 2 pi lag``), harmonic number ``harmonic``, slip factor ``slip_factor``; 0 when
    the phase gives no focusing (``eta cos(phi_s) >= 0`` in this convention, or no voltage)."""
    import math

    phi = math.radians(phase_deg)
    focusing = -slip_factor * math.cos(phi)  # MAD-X lag convention: stable when eta cos(phi_s) < 0
    if voltage <= 0 or focusing <= 0:
        return 0.0
    return math.sqrt(harmonic * abs(rp.charge) * voltage * focusing / (2 * math.pi * rp.beta0 ** 2 * rp.energy0))
