"""Standard containers shared by all engines: phase space, envelope, Twiss table, named values.

Every container is an Equinox module, hence a pytree: arrays are leaves (jit, vmap and grad
go through them), names and the reference particle are static metadata. Coordinates are MAD-X
canonical ``(x, px, y, py, t, pt)`` (see :mod:`jacc.particles`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from jacc.particles import ReferenceParticle

# ----------------------------------------------------------------------------------------
# Phase space
# ----------------------------------------------------------------------------------------


class PhaseSpace(eqx.Module):
    """A set of macroparticles in MAD-X coordinates.

    Attributes:
        coords: ``(n, 6)`` coordinates ``(x [m], px, y [m], py, t [m], pt)``.
        weights: ``(n,)`` macroparticle weights (real particles per macroparticle).
        alive: ``(n,)`` True for particles not lost.
        ref: the reference particle the coordinates are relative to (static).

    Column views: ``ps.x``, ``ps.px``, ``ps.y``, ``ps.py``, ``ps.t``, ``ps.pt`` (each ``(n,)``).
    """

    coords: Float[Array, "n 6"]
    weights: Float[Array, " n"]
    alive: Bool[Array, " n"]
    ref: ReferenceParticle = eqx.field(static=True)

    def __check_init__(self):
        if self.coords.ndim != 2 or self.coords.shape[-1] != 6:
            raise ValueError(f"PhaseSpace: coords must have shape (n, 6), got {self.coords.shape}")
        n = self.coords.shape[0]
        for name in ("weights", "alive"):
            if getattr(self, name).shape != (n,):
                raise ValueError(
                    f"PhaseSpace: {name} must have shape ({n},), got {getattr(self, name).shape}"
                )
        if not isinstance(self.ref, ReferenceParticle):
            raise TypeError(f"PhaseSpace: ref must be a ReferenceParticle, got {type(self.ref)}")

    @classmethod
    def from_array(cls, coords, ref: ReferenceParticle, *, weights=None, alive=None) -> PhaseSpace:
        """Phase space from an ``(n, 6)`` array (or one 6-vector); weights default to 1, all alive."""
        x = jnp.atleast_2d(jnp.asarray(coords, dtype=float))
        n = x.shape[0]
        w = jnp.ones(n) if weights is None else jnp.asarray(weights, dtype=float)
        a = jnp.ones(n, dtype=bool) if alive is None else jnp.asarray(alive, dtype=bool)
        return cls(coords=x, weights=w, alive=a, ref=ref)

    @classmethod
    def gaussian(cls, ref: ReferenceParticle, n: int, cov, *, key, mean=None) -> PhaseSpace:
        """``n`` particles drawn from a 6D Gaussian.

        Args:
            ref: reference particle.
            n: number of macroparticles.
            cov: ``(6, 6)`` covariance matrix, or an :class:`Envelope` (its ``sigma`` and
                ``mean``); build one from Twiss parameters with :meth:`Envelope.from_twiss`.
            key: JAX random key.
            mean: ``(6,)`` centroid (default: zero, or the envelope's mean).
        """
        if isinstance(cov, Envelope):
            mean = cov.mean if mean is None else mean
            cov = cov.sigma
        cov = jnp.asarray(cov, dtype=float)
        mean = jnp.zeros(6) if mean is None else jnp.asarray(mean, dtype=float)
        # eigh accepts singular covariances (e.g. a zero bunch length), unlike Cholesky.
        x = jax.random.multivariate_normal(key, mean, cov, shape=(n,), method="eigh")
        return cls.from_array(x, ref)

    @property
    def n(self) -> int:
        """Number of macroparticles (alive or not)."""
        return self.coords.shape[0]

    def _effective_weights(self):
        return jnp.where(self.alive, self.weights, 0.0)

    def centroid(self) -> Float[Array, " 6"]:
        """Weighted mean of the alive particles' coordinates."""
        w = self._effective_weights()
        return w @ self.coords / jnp.sum(w)

    def covariance(self) -> Float[Array, "6 6"]:
        """Weighted covariance of the alive particles, normalised by the sum of weights.

        The second central moments ``<(z - <z>)(z - <z>)^T>`` (no Bessel correction), the
        quantity rms beam sizes and emittances are made of; equals
        ``numpy.cov(coords.T, aweights=w, bias=True)``.
        """
        w = self._effective_weights()
        d = self.coords - self.centroid()
        return (d * w[:, None]).T @ d / jnp.sum(w)

    def envelope(self) -> Envelope:
        """The beam's second moments as an :class:`Envelope` (covariance and centroid)."""
        return Envelope(sigma=self.covariance(), mean=self.centroid())

    @property
    def x(self) -> Float[Array, " n"]:
        """Horizontal position [m] of each particle."""
        return self.coords[:, 0]

    @property
    def px(self) -> Float[Array, " n"]:
        """Horizontal momentum px / p0 [1]."""
        return self.coords[:, 1]

    @property
    def y(self) -> Float[Array, " n"]:
        """Vertical position [m]."""
        return self.coords[:, 2]

    @property
    def py(self) -> Float[Array, " n"]:
        """Vertical momentum py / p0 [1]."""
        return self.coords[:, 3]

    @property
    def t(self) -> Float[Array, " n"]:
        """Longitudinal coordinate t = -c dt [m]."""
        return self.coords[:, 4]

    @property
    def pt(self) -> Float[Array, " n"]:
        """Energy deviation pt = dE / (p0 c) [1]."""
        return self.coords[:, 5]


# ----------------------------------------------------------------------------------------
# Envelope
# ----------------------------------------------------------------------------------------


def _safe_sqrt(v):
    # sqrt whose gradient at 0 is 0 instead of inf: a zero rms (e.g. no bunch length) must not
    # turn the gradients of the other planes into NaN (0 * inf).
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1.0)), 0.0)


def _plane_sigma(beta, alpha, emit):
    gamma = (1.0 + alpha * alpha) / beta
    return emit * jnp.array([[beta, -alpha], [-alpha, gamma]])


class Envelope(eqx.Module):
    """Second moments of a beam: the 6x6 covariance ``sigma`` and the centroid ``mean``.

    Attributes:
        sigma: ``(6, 6)`` covariance of ``(x, px, y, py, t, pt)`` (units: products of m and 1).
        mean: ``(6,)`` centroid (zero by default).
    """

    sigma: Float[Array, "6 6"] = eqx.field(converter=lambda s: jnp.asarray(s, dtype=float))
    mean: Float[Array, " 6"] = eqx.field(
        default=None, converter=lambda m: jnp.zeros(6) if m is None else jnp.asarray(m, dtype=float)
    )

    def __check_init__(self):
        if self.sigma.shape != (6, 6):
            raise ValueError(f"Envelope: sigma must have shape (6, 6), got {self.sigma.shape}")
        if self.mean.shape != (6,):
            raise ValueError(f"Envelope: mean must have shape (6,), got {self.mean.shape}")

    @classmethod
    def from_twiss(
        cls,
        betx, alfx, emitx, bety, alfy, emity, sigma_t, sigma_pt,
        *, dx=None, dpx=None, dy=None, dpy=None, beta0=None,
    ) -> Envelope:
        """Uncoupled envelope from Courant-Snyder parameters, emittances and dispersion.

        The betatron part of each plane is ``emit * [[beta, -alpha], [-alpha, gamma]]``; the
        longitudinal plane is uncorrelated with rms ``sigma_t`` [m] and ``sigma_pt`` [1].
        Dispersion adds ``x = x_beta + dx * delta`` (likewise ``px``, ``y``, ``py``) with, to first
        order, ``delta = pt / beta0``; so ``sigma_x = sqrt(betx emitx + (dx sigma_pt / beta0)^2)``.

        Args:
            betx, bety: beta functions [m]. alfx, alfy: alpha functions [1].
            emitx, emity: rms geometric emittances [m].
            sigma_t: rms of ``t`` [m]. sigma_pt: rms of ``pt`` [1].
            dx, dy: dispersion [m] per ``delta = dp/p0`` (MAD-X Twiss names, xtrack units).
            dpx, dpy: dispersion of ``px``, ``py`` per ``delta`` [1].
            beta0: reference relativistic beta; required when any dispersion is given.
        """
        disp = (dx, dpx, dy, dpy)
        if any(d is not None for d in disp) and beta0 is None:
            raise ValueError(
                "Envelope.from_twiss: beta0 is required with dispersion (dispersion is per "
                "delta = dp/p0, the longitudinal coordinate is pt = dE/(p0 c))"
            )
        z = jnp.zeros((2, 2))
        sig = jnp.block([
            [_plane_sigma(betx, alfx, emitx), z, z],
            [z, _plane_sigma(bety, alfy, emity), z],
            [z, z, jnp.diag(jnp.array([sigma_t, sigma_pt], dtype=float) ** 2)],
        ])
        if beta0 is not None:
            # d(transverse)/d(pt) = D / beta0; the map u -> u + eta * pt_u acts on the uncorrelated beam.
            eta = jnp.array([0.0 if d is None else d for d in disp] + [0.0, 0.0], dtype=float) / beta0
            a = jnp.eye(6).at[:, 5].add(eta)
            sig = a @ sig @ a.T
        return cls(sigma=sig)

    def beam_sizes(self) -> Float[Array, " 6"]:
        """rms of each coordinate: ``sqrt(diag(sigma))`` (``sigma_x`` [m], ``sigma_px``, ...).

        A zero variance gives size 0 with gradient 0 (not NaN).
        """
        return _safe_sqrt(jnp.diagonal(self.sigma))

    def emittances(self) -> Float[Array, " 3"]:
        """Projected rms emittances ``sqrt(det)`` of the (x, px), (y, py), (t, pt) blocks [m].

        Projected: dispersion and coupling are not removed, so a dispersive beam shows a
        larger horizontal emittance than its betatron one.
        """
        def det2(i):
            s = self.sigma
            return s[i, i] * s[i + 1, i + 1] - s[i, i + 1] * s[i + 1, i]

        return _safe_sqrt(jnp.stack([det2(0), det2(2), det2(4)]))

    def propagate(self, m: Float[Array, "6 6"]) -> Envelope:
        """Envelope after a linear map ``m``: ``sigma' = m sigma m^T``, ``mean' = m mean``."""
        m = jnp.asarray(m, dtype=float)
        return Envelope(sigma=m @ self.sigma @ m.T, mean=m @ self.mean)


# ----------------------------------------------------------------------------------------
# Twiss table
# ----------------------------------------------------------------------------------------

TWISS_COLUMNS = ("s", "betx", "bety", "alfx", "alfy", "mux", "muy",
                 "dx", "dpx", "dy", "dpy", "x", "px", "y", "py")
TWISS_MODE_COLUMNS = ("betx1", "bety1", "betx2", "bety2")
TWISS_SUMMARY = ("qx", "qy", "dqx", "dqy", "momentum_compaction")


def _array_or_none(v):
    return None if v is None else jnp.asarray(v, dtype=float)


def _column():
    return eqx.field(converter=lambda v: jnp.asarray(v, dtype=float))


def _optional():
    return eqx.field(default=None, converter=_array_or_none)


class Twiss(eqx.Module):
    """Optics functions along a beamline, with MAD-X column names and units.

    Rows are the start of the line, then each element's exit. Every column is an ``(N,)``
    array (a pytree leaf: jit, vmap and grad apply); ``name`` is static.

    Attributes:
        name: element name of each row (static tuple of str).
        s: path length at the row [m].
        betx, bety: beta functions [m]. alfx, alfy: alpha functions [1].
        mux, muy: phase advances [2 pi].
        dx, dy: dispersion [m] per ``delta = dp/p0``. dpx, dpy: its ``px``, ``py`` [1].
        x, px, y, py: closed orbit (or reference trajectory) [m], [1].
        betx1, bety1, betx2, bety2: mode beta functions of coupled optics [m] (optional).
        qx, qy: tunes [1]; dqx, dqy: chromaticities dQ/d delta [1];
        momentum_compaction: [1] (scalars, optional).

    Tables and plots (``rows``, ``to_pandas()``, ``plot()``) live in ``jacc.optics.table``
    and are reached through the methods below, so this pytree carries no pandas/plotting code.
    """

    name: tuple[str, ...] = eqx.field(static=True, converter=lambda n: tuple(str(v) for v in n))
    s: Float[Array, " N"] = _column()
    betx: Float[Array, " N"] = _column()
    bety: Float[Array, " N"] = _column()
    alfx: Float[Array, " N"] = _column()
    alfy: Float[Array, " N"] = _column()
    mux: Float[Array, " N"] = _column()
    muy: Float[Array, " N"] = _column()
    dx: Float[Array, " N"] = _column()
    dpx: Float[Array, " N"] = _column()
    dy: Float[Array, " N"] = _column()
    dpy: Float[Array, " N"] = _column()
    x: Float[Array, " N"] = _column()
    px: Float[Array, " N"] = _column()
    y: Float[Array, " N"] = _column()
    py: Float[Array, " N"] = _column()
    betx1: Float[Array, " N"] | None = _optional()
    bety1: Float[Array, " N"] | None = _optional()
    betx2: Float[Array, " N"] | None = _optional()
    bety2: Float[Array, " N"] | None = _optional()
    qx: Float[Array, ""] | None = _optional()
    qy: Float[Array, ""] | None = _optional()
    dqx: Float[Array, ""] | None = _optional()
    dqy: Float[Array, ""] | None = _optional()
    momentum_compaction: Float[Array, ""] | None = _optional()

    def __check_init__(self):
        n = len(self.name)
        for col in TWISS_COLUMNS + TWISS_MODE_COLUMNS:
            v = getattr(self, col)
            if v is not None and v.shape != (n,):
                raise ValueError(
                    f"Twiss: column {col!r} must have shape ({n},) like name, got {v.shape}"
                )
        for key in TWISS_SUMMARY:
            v = getattr(self, key)
            if v is not None and v.shape != ():
                raise ValueError(f"Twiss: {key!r} must be a scalar, got shape {v.shape}")

    def __len__(self) -> int:
        return len(self.name)

    def __getitem__(self, column: str):
        """A column or summary value by its MAD-X name, e.g. ``tw["betx"]``."""
        if column == "name" or column in TWISS_COLUMNS + TWISS_MODE_COLUMNS + TWISS_SUMMARY:
            return getattr(self, column)
        raise KeyError(
            f"Twiss has no column {column!r}; columns: {TWISS_COLUMNS + TWISS_MODE_COLUMNS}, "
            f"summary: {TWISS_SUMMARY}"
        )

    def columns(self) -> tuple[str, ...]:
        """Names of the columns present (optional ones only when set)."""
        return tuple(c for c in TWISS_COLUMNS + TWISS_MODE_COLUMNS if getattr(self, c) is not None)

    # Table views are provided by jacc.optics.table (functions rows/to_pandas/plot taking a Twiss),
    # imported lazily so this container stays free of pandas and matplotlib.
    @property
    def rows(self):
        """Row selection by element name, index or regular expression (``jacc.optics.table``)."""
        return _table("rows")(self)

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (``jacc.optics.table``)."""
        return _table("to_pandas")(self)

    def plot(self, *args, **kwargs):
        """Plot optics functions (``jacc.optics.table``)."""
        return _table("plot")(self, *args, **kwargs)


def _table(func: str):
    try:
        from jacc.optics import table
    except ModuleNotFoundError as e:
        if e.name not in ("jacc.optics.table", "jacc.optics"):
            raise
        raise NotImplementedError(f"Twiss.{func} needs jacc.optics.table, not available yet") from e
    return getattr(table, func)


# ----------------------------------------------------------------------------------------
# Named values
# ----------------------------------------------------------------------------------------


class NamedValues(eqx.Module):
    """Named scalars or vectors, e.g. knob settings or fitted parameters; a pytree.

    The names are the pytree structure (static); the values are array leaves. Build with a
    mapping or keywords: ``NamedValues({"kq01": 1.2})`` or ``NamedValues(kq01=1.2)``.
    """

    values: dict[str, Array]

    def __init__(self, values: Mapping[str, Any] | None = None, /, **kwargs):
        merged = {**(dict(values) if values is not None else {}), **kwargs}
        for k in merged:
            if not isinstance(k, str):
                raise TypeError(f"NamedValues: names must be str, got {k!r}")
        self.values = {k: jnp.asarray(v, dtype=float) for k, v in merged.items()}

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    def __getitem__(self, name: str):
        try:
            return self.values[name]
        except KeyError:
            raise KeyError(f"NamedValues has no {name!r}; names: {list(self.values)}") from None

    def __contains__(self, name) -> bool:
        return name in self.values

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def keys(self):
        return self.values.keys()

    def items(self):
        return self.values.items()

    def replace(self, **updates) -> NamedValues:
        """A copy with some values replaced (names must exist)."""
        unknown = set(updates) - set(self.values)
        if unknown:
            raise KeyError(
                f"NamedValues.replace: unknown names {sorted(unknown)}; names: {list(self.values)}"
            )
        return NamedValues({**self.values, **updates})
