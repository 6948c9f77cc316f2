"""LOCO: fit quadrupole gradient errors and BPM/corrector calibrations to a measured ORM.

The model of a measurement is ``B(g, psi) ORM(k0 (1 + dq)) diag(c)`` (and ``B D`` for the
dispersion): ``dq`` the relative gradient errors of the fitted quadrupoles (per magnet, or
per lattice knob such as IOTA's ``kq01``), ``B`` the BPM gains and rolls, ``c`` the corrector
gains (conventions in `jacc.calibrate.errors`). Levenberg-Marquardt (optimistix) minimises
the noise-weighted residual; Jacobians are exact (forward mode through the fast linear
response, `LinearResponse`).

Gain degeneracy: scaling every BPM gain of a plane by ``a`` and every corrector gain of that
plane by ``1/a`` leaves the uncoupled ORM unchanged (BPM rolls and coupling break this only
weakly). A measured dispersion (whose energy step is known) fixes the BPM gain scale of a
plane with dispersion; in a plane without, the fit fixes the degeneracy with the constraint
"the corrector gains of this plane average exactly 1" (the last corrector gain is minus the
sum of the others' deviations): the fitted gains of that plane are then the true ones up to
a common scale. Bayesian LOCO (`jacc.calibrate.bayes`) uses priors instead.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from jacc.lattice import Lattice
from jacc.match._knobs import Vary, apply_values
from jacc.match._solve import solve

from .errors import Measurement, bpm_reading, resolve_quads
from .orm import OrbitResponse, OrmLayout
from .response import LinearResponse

GROUPS = ("quad_errors", "bpm_gain_x", "bpm_gain_y", "bpm_roll", "corrector_gain_h", "corrector_gain_v")


@dataclasses.dataclass(frozen=True)
class LocoOptions:
    """What a LOCO fit adjusts and how.

    Attributes:
        quads: fit the quadrupole gradient errors.
        bpm_gains: fit the BPM gains (both planes).
        bpm_rolls: fit the BPM rolls (needs coupled data: the off-diagonal ORM blocks).
        corrector_gains: fit the corrector gains.
        dispersion: also fit the measured dispersion when the measurement has it.
        gain_constraint: make each plane's corrector gains average exactly 1, which fixes
            the degeneracy when both BPM and corrector gains are fitted. None (default):
            in each plane where the fitted dispersion does not fix the BPM gain scale (no
            dispersion data, or a design dispersion rms at the BPMs below 1 mm in that plane,
            like the vertical plane of a flat ring); True/False: in both planes / neither.
        quad_prior: rms of a Gaussian prior on the relative gradient errors (a maximum a
            posteriori fit, useful when some errors are poorly constrained); None: none.
        max_steps: Levenberg-Marquardt step limit.
        progress: progress bar.
    """

    quads: bool = True
    bpm_gains: bool = True
    bpm_rolls: bool = True
    corrector_gains: bool = True
    dispersion: bool = True
    gain_constraint: bool | None = None
    quad_prior: float | None = None
    max_steps: int = 50
    progress: bool = True


class LocoModel:
    """The measurement model of LOCO for one lattice and one BPM/corrector layout.

    Args:
        lat: the design lattice.
        rp: reference particle.
        layout: BPMs and correctors (e.g. ``measurement.layout``).
        quads: the fitted gradients: `Vary` objects or spellings (``"qa1r:1.k1"`` per
            magnet, ``"kq01"`` per knob); default: every quadrupole magnet with k1 != 0.
        model: engine preset (default `jacc.calibrate.orm.default_model`).
    """

    def __init__(self, lat: Lattice, rp, layout: OrmLayout, *, quads=None, model=None):
        self.lattice = lat
        self.quads: list[Vary] = resolve_quads(lat, quads)
        self.response = OrbitResponse(lat, rp, layout=layout, vary=self.quads, model=model)
        self.linear = LinearResponse(self.response)
        self.layout = layout
        self.dynamic = self.response.dynamic
        self.k0 = np.array([float(self.dynamic[v.key]) for v in self.quads])
        self.sizes = {"quad_errors": len(self.quads), "bpm_gain_x": layout.n_bpms,
                      "bpm_gain_y": layout.n_bpms, "bpm_roll": layout.n_bpms,
                      "corrector_gain_h": len(layout.hcorrectors),
                      "corrector_gain_v": len(layout.vcorrectors)}

    @property
    def quad_names(self) -> list[str]:
        return [v.key for v in self.quads]

    def dynamic_for(self, quad_errors) -> dict:
        """Engine parameters with the quadrupoles at ``k0 (1 + quad_errors)``."""
        d = dict(self.dynamic)
        k = jnp.asarray(self.k0) * (1.0 + quad_errors)
        for i, v in enumerate(self.quads):
            d[v.key] = k[i]
        return d

    def predict(self, p: dict, dispersion: bool = True):
        """Model measurement ``(orm, dispersion or None)`` for parameters ``p``.

        ``p`` maps group names (`GROUPS`) to arrays; missing groups take their ideal values.
        Gains are deviations: the gain is ``1 + p["bpm_gain_x"]``.
        """
        z = {g: jnp.asarray(p[g]) if g in p else jnp.zeros(n) for g, n in self.sizes.items()}
        # compiled once: samplers evaluate the model outside jit while they initialise
        return self._predict(z, bool(dispersion))

    @functools.cached_property
    def _predict(self):
        return jax.jit(self._predict_impl, static_argnums=1)

    def _predict_impl(self, z: dict, dispersion: bool):
        d = self.dynamic_for(z["quad_errors"])
        gx, gy, roll = 1.0 + z["bpm_gain_x"], 1.0 + z["bpm_gain_y"], z["bpm_roll"]
        c = 1.0 + jnp.concatenate([z["corrector_gain_h"], z["corrector_gain_v"]])
        orm = bpm_reading(self.linear.orm(d), gx, gy, roll, xp=jnp) * c[None, :]
        disp = bpm_reading(self.linear.dispersion(d), gx, gy, roll, xp=jnp) if dispersion else None
        return orm, disp

    def apply(self, lat: Lattice, quad_errors) -> Lattice:
        """A copy of ``lat`` with the fitted relative errors applied to its gradients."""
        return apply_values(lat, self.quads, self.k0 * (1.0 + np.asarray(quad_errors)))


@dataclasses.dataclass(frozen=True)
class LocoResult:
    """Outcome of a LOCO fit.

    Attributes:
        params: fitted values per group (`GROUPS`): relative quadrupole errors, gain
            deviations (gain = 1 + value), rolls [rad]; zeros for groups not fitted.
        std: one-sigma uncertainties from the Jacobian at the solution (same layout).
        quad_names: keys of the fitted gradients.
        lattice: the design lattice with the fitted gradient errors applied.
        orm_model, dispersion_model: the fitted model of the measurement.
        chi2, dof: weighted sum of squares and degrees of freedom; ``chi2 / dof`` ~ 1 at
            the noise floor.
        residual_rms: rms of (measured - model) ORM entries [m/rad].
        converged, iterations, message, history, time_s: as for `jacc.match`.
    """

    params: dict
    std: dict
    quad_names: list
    lattice: Lattice
    orm_model: np.ndarray
    dispersion_model: np.ndarray | None
    orm_initial: np.ndarray
    chi2: float
    dof: int
    residual_rms: float
    converged: bool
    iterations: int
    message: str
    history: np.ndarray
    time_s: float

    @property
    def quad_errors(self) -> np.ndarray:
        return self.params["quad_errors"]

    def __str__(self) -> str:
        q = self.params["quad_errors"]
        return (f"LOCO: {'converged' if self.converged else 'NOT converged'} in {self.iterations} steps, "
                f"{self.time_s:.2f} s; chi2/dof = {self.chi2:.4g}/{self.dof} = {self.chi2 / max(self.dof, 1):.4g}; "
                f"ORM residual rms {self.residual_rms:.3e} m/rad; rms fitted dk/k {np.sqrt(np.mean(q**2)):.3e}")


class Loco:
    """A compiled LOCO fit; `fit` may be called on several measurements of the same layout.

    Args:
        lat, rp: design lattice and reference particle.
        layout: BPMs and correctors of the measurements.
        quads: fitted gradients (see `LocoModel`).
        options: `LocoOptions`.
        solver: optimistix least-squares solver (default Levenberg-Marquardt).
        model: engine preset.
    """

    def __init__(self, lat: Lattice, rp, layout: OrmLayout, *, quads=None,
                 options: LocoOptions | None = None, solver=None, model=None):
        import optimistix as optx

        self.options = LocoOptions() if options is None else options
        self.model = LocoModel(lat, rp, layout, quads=quads, model=model)
        self.solver = optx.LevenbergMarquardt(rtol=1e-10, atol=1e-12) if solver is None else solver
        o = self.options
        fitted = {"quad_errors": o.quads, "bpm_gain_x": o.bpm_gains, "bpm_gain_y": o.bpm_gains,
                  "bpm_roll": o.bpm_rolls, "corrector_gain_h": o.corrector_gains,
                  "corrector_gain_v": o.corrector_gains}
        both = bool(o.bpm_gains and o.corrector_gains)
        if o.gain_constraint is None and both and o.dispersion:
            d = np.asarray(self.model.linear.dispersion())
            nb = layout.n_bpms
            rms = {"corrector_gain_h": np.sqrt(np.mean(d[:nb] ** 2)),
                   "corrector_gain_v": np.sqrt(np.mean(d[nb:] ** 2))}
            self.constrained = {g: bool(rms[g] < 1e-3) for g in rms}
        else:
            flag = both and (o.gain_constraint if o.gain_constraint is not None else True)
            self.constrained = {"corrector_gain_h": flag, "corrector_gain_v": flag}
        self.free = {}
        for g in GROUPS:
            n = self.model.sizes[g] if fitted[g] else 0
            if self.constrained.get(g) and n:
                n -= 1  # the last one follows from the mean-1 constraint
            self.free[g] = n
        self.n_params = sum(self.free.values())
        if self.n_params == 0:
            raise ValueError("LocoOptions: nothing to fit")
        self._cache: dict = {}

    def unpack(self, theta) -> dict:
        """Group arrays (full sizes) from the free parameter vector ``theta``."""
        out, i = {}, 0
        for g in GROUPS:
            n, full = self.free[g], self.model.sizes[g]
            x = theta[i:i + n]
            i += n
            if n == full:
                out[g] = x
            elif self.constrained.get(g) and full and n == full - 1:
                out[g] = jnp.concatenate([x, -jnp.sum(x, keepdims=True)])
            else:
                out[g] = jnp.zeros(full)
        return out

    def residual(self, theta, data):
        """Noise-weighted residuals ``(model - measured) / sigma`` (ORM, then dispersion, then prior)."""
        orm_m, disp_m, w_orm, w_disp = data
        use_disp = disp_m is not None
        orm, disp = self.model.predict(self.unpack(theta), dispersion=use_disp)
        r = [((orm - orm_m) * w_orm).ravel()]
        if use_disp:
            r.append((disp - disp_m) * w_disp)
        if self.options.quad_prior:
            r.append(theta[: self.free["quad_errors"]] / self.options.quad_prior)
        return jnp.concatenate(r)

    def jacobian(self, theta, data):
        """Jacobian of `residual`: forward mode, the gradient block apart so that only its
        tangents travel through the optics (the calibration block is cheap)."""
        nq = self.free["quad_errors"]
        q, rest = theta[:nq], theta[nq:]
        blocks = []
        if nq:
            blocks.append(jax.jacfwd(lambda qq: self.residual(jnp.concatenate([qq, rest]), data))(q))
        if theta.shape[0] > nq:
            blocks.append(jax.jacfwd(lambda rr: self.residual(jnp.concatenate([q, rr]), data))(rest))
        return jnp.concatenate(blocks, axis=1)

    def _data(self, m: Measurement):
        if m.layout != self.model.layout:
            raise ValueError("Loco.fit: the measurement's BPMs/correctors differ from this fit's layout")
        # noise-free data: weight 1 per m/rad and per m (the fit is then exact anyway)
        w_orm = 1.0 / m.orm_sigma if m.orm_sigma > 0 else 1.0
        use_disp = self.options.dispersion and m.dispersion is not None
        if self.options.dispersion and m.dispersion is None and not all(self.constrained.values()) \
                and self.options.bpm_gains and self.options.corrector_gains:
            raise ValueError("Loco.fit: these options rely on the dispersion to fix the gain scale but "
                             "the measurement has none; pass LocoOptions(dispersion=False)")
        w_disp = (1.0 / m.dispersion_sigma if m.dispersion_sigma > 0 else 1.0) if use_disp else 0.0
        return (jnp.asarray(m.orm), jnp.asarray(m.dispersion) if use_disp else None,
                jnp.asarray(w_orm), jnp.asarray(w_disp))

    def fit(self, measurement: Measurement, theta0=None) -> LocoResult:
        """Fit ``measurement``; start from the ideal machine unless ``theta0`` is given."""
        data = self._data(measurement)
        theta0 = jnp.zeros(self.n_params) if theta0 is None else jnp.asarray(theta0, dtype=jnp.float64)
        use_disp = data[1] is not None

        def extra(t, d):
            # evaluated at the start and at the solution inside the solve's own program
            orm, disp = self.model.predict(self.unpack(t), use_disp)
            return self.jacobian(t, d), orm, disp

        res = solve(self.residual, theta0, data, solver=self.solver, max_steps=self.options.max_steps,
                    progress=self.options.progress, desc="LOCO", jitted=self._cache,
                    jacobian=self.jacobian, extra=extra)
        theta = jnp.asarray(res.y)
        (_, orm0, _), (jac, orm, disp) = res.extra
        n_data = jac.shape[0] - (self.free["quad_errors"] if self.options.quad_prior else 0)
        dof = max(n_data - self.n_params, 1)
        chi2 = float(np.sum(res.residual[:n_data] ** 2))
        # noise-free data carry no noise scale: use the residual's own
        scale = 1.0 if measurement.orm_sigma > 0 else chi2 / dof
        cov = np.linalg.pinv(jac.T @ jac) * scale
        std = self.unpack(jnp.sqrt(np.clip(np.diag(cov), 0, None)))
        if any(self.constrained.values()):
            # the eliminated gain's variance: var(sum of the others) from the covariance
            i = sum(self.free[g] for g in GROUPS[:4])
            for g in ("corrector_gain_h", "corrector_gain_v"):
                n = self.free[g]
                if n and self.constrained[g]:
                    block = cov[i:i + n, i:i + n]
                    std[g] = std[g].at[-1].set(np.sqrt(max(block.sum(), 0.0)))
                i += n
        params = {g: np.asarray(v) for g, v in self.unpack(theta).items()}
        if theta0 is not None and np.any(np.asarray(theta0)):
            orm0 = np.asarray(self.model.predict({}, False)[0])
        r = np.asarray(measurement.orm) - np.asarray(orm)
        return LocoResult(
            params=params, std={g: np.asarray(v) for g, v in std.items()},
            quad_names=self.model.quad_names,
            lattice=self.model.apply(self.model.lattice, params["quad_errors"]),
            orm_model=np.asarray(orm), dispersion_model=None if disp is None else np.asarray(disp),
            orm_initial=np.asarray(orm0), chi2=chi2, dof=dof,
            residual_rms=float(np.sqrt(np.mean(r**2))), converged=res.success, iterations=res.iterations,
            message=res.message, history=res.history, time_s=res.time_s)


def loco(lat: Lattice, rp, measurement: Measurement, *, quads=None, options: LocoOptions | None = None,
         solver=None, model=None, **option_kwargs) -> LocoResult:
    """Fit a LOCO model of ``lat`` to ``measurement`` (see `Loco`, `LocoOptions`)."""
    if options is None:
        options = LocoOptions(**option_kwargs)
    elif option_kwargs:
        options = dataclasses.replace(options, **option_kwargs)
    key = _fit_key(lat, rp, measurement, quads, options, solver, model)
    fit = _FITS.pop(key, None) if key is not None else None
    if fit is None:
        fit = Loco(lat, rp, measurement.layout, quads=quads, options=options, solver=solver, model=model)
    else:
        fit.model.lattice = lat  # equal values; the result lattice is built from this one
    if key is not None:
        _FITS[key] = fit  # most recent last
        while len(_FITS) > _MAX_FITS:
            _FITS.pop(next(iter(_FITS)))
    return fit.fit(measurement)


# Compiled fits of recent `loco` calls: the same lattice (all values: the model's response
# matrices are computed from them), layout, quadrupoles and options fit a new measurement
# without compiling again.
_FITS: dict = {}
_MAX_FITS = 4


def _fit_key(lat, rp, measurement, quads, options, solver, model):
    from jacc.engine.cache import preset_key

    try:
        key = (lat.to_json(), rp.reference(), measurement.layout, measurement.dispersion is not None,
               repr(quads), options, repr(solver), None if model is None else preset_key(model))
        hash(key)
        return key
    except TypeError:  # unhashable pieces: no caching
        return None
