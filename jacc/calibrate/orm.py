"""Orbit response matrix (ORM): ``jax.jacfwd`` of the closed orbit at the BPMs w.r.t. corrector kicks.

`OrbitResponse` compiles a lattice with its corrector kicks (and any other parameters, e.g.
quadrupole gradients for LOCO) flagged, and gives the closed orbit at the BPMs as a pure
function of them. The closed orbit is found by Newton iteration on the engine's one-turn
map (4D: ``pt`` fixed); its derivatives come from the implicit function theorem
(``z = f(z, p)`` gives ``dz = (I - df/dz)^-1 df/dp dp``) in a custom JVP, so that
``jacfwd`` over 40 kicks costs one tracking pass with 40 tangents, not a differentiation of
the Newton loop. The ORM and the dispersion at the BPMs are then plain ``jax.jacfwd``s.

Layout of an ORM: rows are ``x`` at every BPM then ``y`` at every BPM [m]; columns are the
horizontal kicks then the vertical kicks [rad].
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jacc.lattice import Lattice
from jacc.match._knobs import Vary, check_knobs, flagged_copy

_H = ("HKicker", "HVCorrector")
_V = ("VKicker", "HVCorrector")
_KICKERS = ("HKicker", "VKicker", "HVCorrector")


@dataclasses.dataclass(frozen=True)
class OrmLayout:
    """Which BPMs read and which correctors kick (placement keys ``name:n``, in s order).

    Attributes:
        bpms: BPM placement keys; ``bpm_index`` their placement indices.
        hcorrectors, vcorrectors: correctors kicking horizontally / vertically.
        h_index, v_index: their placement indices.
    """

    bpms: tuple[str, ...]
    bpm_index: tuple[int, ...]
    hcorrectors: tuple[str, ...]
    h_index: tuple[int, ...]
    vcorrectors: tuple[str, ...]
    v_index: tuple[int, ...]

    @property
    def n_bpms(self) -> int:
        return len(self.bpms)

    @property
    def kick_keys(self) -> list[str]:
        """Dynamic keys of the kicks, horizontal then vertical (``"ca1r:1.xangle"``)."""
        return [f"{k}.xangle" for k in self.hcorrectors] + [f"{k}.yangle" for k in self.vcorrectors]

    @property
    def shape(self) -> tuple[int, int]:
        return 2 * len(self.bpms), len(self.hcorrectors) + len(self.vcorrectors)


def _placements(lat: Lattice, names, kinds, what: str) -> list:
    elements = lat.elements
    if names is None:
        out = [p for p in elements if p.element_name in kinds]
        if not out:
            raise ValueError(f"lattice '{lat.name}' has no {what} (element types {list(kinds)})")
        return out
    out = []
    for n in names:
        if n in lat.definitions:
            ps = [elements[i] for i in lat.placements_of(n)]
        else:
            try:
                ps = [lat[n]]
            except KeyError:
                valid = sorted({p.key for p in elements if p.element_name in kinds})
                close = difflib.get_close_matches(str(n), valid, n=3)
                hint = f" (did you mean {close}?)" if close else ""
                raise ValueError(f"unknown {what} '{n}'{hint}; valid: {valid}") from None
        for p in ps:
            if p.element_name not in kinds:
                raise ValueError(f"'{p.key}' is a {p.element_name}, not one of the {what} types {list(kinds)}")
        out += ps
    return sorted({p.index: p for p in out}.values(), key=lambda p: p.index)


def select_layout(lat: Lattice, bpms: Sequence[str] | None = None,
                  correctors: Sequence[str] | None = None, *, planes: str = "xy") -> OrmLayout:
    """BPMs (default: every Monitor) and correctors (default: every HKicker, VKicker and
    HVCorrector; an HVCorrector kicks in both planes) of ``lat``.

    Args:
        bpms, correctors: definition names or placement keys (``"ca1r"``, ``"ca1r:1"``).
        planes: ``"xy"``, ``"x"`` or ``"y"``: which kick planes to use.
    """
    if planes not in ("xy", "x", "y"):
        raise ValueError(f"planes must be 'xy', 'x' or 'y', got {planes!r}")
    b = _placements(lat, bpms, ("Monitor",), "BPM")
    c = _placements(lat, correctors, _KICKERS, "corrector")
    h = [p for p in c if p.element_name in _H] if "x" in planes else []
    v = [p for p in c if p.element_name in _V] if "y" in planes else []
    return OrmLayout(tuple(p.key for p in b), tuple(p.index for p in b),
                     tuple(p.key for p in h), tuple(p.index for p in h),
                     tuple(p.key for p in v), tuple(p.index for p in v))


def _check_layout(lat: Lattice, layout: OrmLayout) -> None:
    for keys, idx in ((layout.bpms, layout.bpm_index), (layout.hcorrectors, layout.h_index),
                      (layout.vcorrectors, layout.v_index)):
        for k, i in zip(keys, idx):
            if k not in lat or lat[k].index != i:
                raise ValueError(f"layout: '{k}' is not placement {i} of lattice '{lat.name}'")


def default_model():
    """Engine preset for response matrices: Xsuite's models with exact dipole flows.

    Response matrices are linear optics; xtrack's default sliced bends agree with the exact
    flow to ~1e-10 there, and the exact flow is ~100 times cheaper to track (IOTA).
    """
    from jacc.engine import XsuiteExactBend

    return XsuiteExactBend()


class OrbitResponse:
    """Closed orbit at the BPMs as a differentiable function; ORM and dispersion by ``jacfwd``.

    The response is 4D: the orbit is searched at fixed ``pt`` and RF cavities are switched
    off in the compiled copy (as MAD-X and xtrack 4D Twiss).

    Args:
        lat: lattice with BPMs and correctors (not modified).
        rp: reference particle.
        bpms, correctors, planes: see `select_layout`.
        vary: further parameters to expose in ``dynamic`` (e.g. quadrupole ``k1`` for LOCO):
            `jacc.match.Vary` objects or their spellings (``"qa1r:1.k1"``, ``"kq01"``).
        model: engine preset (default `default_model`).
        layout: an `OrmLayout` to use instead of ``bpms``/``correctors``/``planes``.
        newton_steps: Newton iterations of the closed-orbit search (quadratic convergence:
            a few are enough unless the orbit is far from the reference).

    Attributes:
        layout: `OrmLayout`.
        dynamic: the engine's dynamic parameters at their lattice values (kicks included).
    """

    def __init__(self, lat: Lattice, rp, *, bpms=None, correctors=None, planes: str = "xy",
                 vary: Sequence = (), model=None, newton_steps: int = 6,
                 layout: OrmLayout | None = None):
        from jacc.engine import TrackingEngine
        from jacc.match._knobs import parse_knobs

        self.lattice = lat
        if layout is None:
            layout = select_layout(lat, bpms, correctors, planes=planes)
        else:
            _check_layout(lat, layout)
        self.layout = layout
        kicks = [Vary(k, "xangle") for k in self.layout.hcorrectors] + \
                [Vary(k, "yangle") for k in self.layout.vcorrectors]
        self.vary = parse_knobs(list(vary)) if len(vary) else []
        check_knobs(lat, self.vary)
        flagged = _without_rf(flagged_copy(lat, kicks + self.vary))
        self.engine = TrackingEngine(flagged, rp, default_model() if model is None else model)
        spec, _, dynamic = self.engine.make_model()
        self.spec, self.dynamic = spec, dynamic
        self.beta0 = float(rp.beta0)
        self.newton_steps = int(newton_steps)
        self._line = self.engine.make_line_func(spec)
        # BPM i reads the state after placement_step[i] scan steps (the start if none)
        self._bpm_steps = np.asarray(spec.placement_step[list(self.layout.bpm_index)], dtype=np.int64)
        self._orbit = _make_closed_orbit(self._line, self._bpm_steps, self.newton_steps)

    @property
    def kick_keys(self) -> list[str]:
        return self.layout.kick_keys

    def kicks(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Current kick values [rad], horizontal then vertical."""
        d = self.dynamic if dynamic is None else dynamic
        return jnp.stack([jnp.asarray(d[k], dtype=jnp.float64) for k in self.kick_keys])

    def with_kicks(self, dynamic: dict, kicks) -> dict:
        d = dict(dynamic)
        for i, k in enumerate(self.kick_keys):
            d[k] = kicks[i]
        return d

    def closed_orbit(self, dynamic: dict | None = None, kicks=None, pt=0.0) -> jnp.ndarray:
        """Closed orbit ``(x, px, y, py)`` at each BPM, shape (n_bpms, 4) [m, 1].

        Args:
            dynamic: engine parameters (default: the lattice's).
            kicks: corrector kicks (default: those in ``dynamic``).
            pt: energy deviation of the orbit (4D: fixed, not searched).
        """
        d = self.dynamic if dynamic is None else dynamic
        if kicks is not None:
            d = self.with_kicks(d, kicks)
        return self._orbit(d, jnp.asarray(pt, dtype=jnp.float64))[1]

    def closed_orbit_start(self, dynamic: dict | None = None, pt=0.0) -> jnp.ndarray:
        """Closed orbit (x, px, y, py) at the lattice start."""
        d = self.dynamic if dynamic is None else dynamic
        return self._orbit(d, jnp.asarray(pt, dtype=jnp.float64))[0]

    def bpm_orbit(self, dynamic: dict | None = None, kicks=None) -> jnp.ndarray:
        """``x`` at every BPM then ``y`` at every BPM [m], shape (2 n_bpms,)."""
        co = self.closed_orbit(dynamic, kicks)
        return jnp.concatenate([co[:, 0], co[:, 2]])

    def orm(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Orbit response matrix ``d(x, y at BPMs) / d(kicks)``, shape (2 n_bpms, n_kicks) [m/rad]."""
        d = self.dynamic if dynamic is None else dynamic
        return jax.jacfwd(lambda k: self.bpm_orbit(d, k))(self.kicks(d))

    def dispersion(self, dynamic: dict | None = None) -> jnp.ndarray:
        """Dispersion ``d(x, y at BPMs) / d(delta)`` [m], shape (2 n_bpms,) (``delta = dp/p0``)."""
        d = self.dynamic if dynamic is None else dynamic

        def orbit(pt):
            co = self._orbit(d, pt)[1]
            return jnp.concatenate([co[:, 0], co[:, 2]])

        # d pt / d delta = beta0 at delta = 0
        return jax.jacfwd(orbit)(jnp.asarray(0.0)) * self.beta0

    def converged(self, dynamic: dict | None = None, tol: float = 1e-12) -> bool:
        """Whether the Newton search closed the orbit (one-turn mismatch below ``tol`` [m])."""
        d = self.dynamic if dynamic is None else dynamic
        return bool(self._orbit(d, jnp.asarray(0.0))[2] < tol)


def _without_rf(lat: Lattice) -> Lattice:
    """``lat`` with every RF cavity at zero voltage: the 4D response (as MAD-X and xtrack 4D
    Twiss), where a kick's path-length change does not come back as an energy change."""
    data = lat.model_dump()
    rf = {n for n, e in data["definitions"].items() if e["element_name"] == "RFCavity"}
    if not rf:
        return lat
    for n in rf:
        data["definitions"][n]["voltage"] = 0.0
        if "voltage" in data["expressions"].get(n, {}):
            data["expressions"][n] = {f: t for f, t in data["expressions"][n].items() if f != "voltage"}
    for i, ov in data["overrides"].items():
        if data["line"][int(i)] in rf and "voltage" in ov:
            ov["voltage"] = 0.0
    return type(lat).model_validate(data)


def _make_closed_orbit(line, bpm_steps: np.ndarray, newton_steps: int):
    """``orbit(dynamic, pt) -> (z0 (4,), z at BPMs (n, 4), mismatch)``, with an implicit JVP."""
    take = jnp.asarray(np.maximum(bpm_steps - 1, 0))
    at_start = jnp.asarray(bpm_steps == 0)

    def full(z4, dynamic, pt):
        v = jnp.concatenate([z4, jnp.zeros(1, z4.dtype), jnp.reshape(pt, (1,))])
        out, states = line(dynamic, v)
        s = jnp.where(at_start[:, None], v[None, :4], states[take, :4])
        return out[:4], s

    def solve(dynamic, pt):
        # Newton on z -> f(z) - z; the primal only (derivatives come from the implicit JVP).
        # Each iteration reports the point it started from, the BPM orbit there and the
        # one-turn mismatch; the last iteration's report is the result.
        def turn(zz):
            fz, s = full(zz, dynamic, pt)
            return fz, (fz, s)

        def body(z, _):
            jac, (fz, s) = jax.jacfwd(turn, has_aux=True)(z)
            step = jnp.linalg.solve(jac - jnp.eye(4), fz - z)
            return z - step, (z, s, jnp.max(jnp.abs(fz - z)))

        _, (zs, ss, mis) = jax.lax.scan(body, jnp.zeros(4), None, length=newton_steps)
        return zs[-1], ss[-1], mis[-1]

    @jax.custom_jvp
    def orbit(dynamic, pt):
        return solve(dynamic, pt)

    @orbit.defjvp
    def orbit_jvp(primals, tangents):
        dynamic, pt = primals
        d_dyn, d_pt = tangents
        z, s, mis = solve(dynamic, pt)
        # one pass with five tangents: the four unit orbit directions (df/dz, dg/dz) and the
        # parameter tangent at fixed z (df/dp dp, dg/dp dp)
        t_z = jnp.concatenate([jnp.eye(4), jnp.zeros((1, 4))])
        t_dyn = jax.tree.map(lambda x, dx: jnp.concatenate(
            [jnp.zeros((4,) + jnp.shape(x), jnp.result_type(x)), jnp.asarray(dx)[None]]), dynamic, d_dyn)
        t_pt = jnp.concatenate([jnp.zeros(4), jnp.reshape(d_pt, (1,))])
        df, ds = jax.vmap(lambda a, b, c: jax.jvp(full, (z, dynamic, pt), (a, b, c))[1])(t_z, t_dyn, t_pt)
        jac_f, jac_s = df[:4].T, jnp.moveaxis(ds[:4], 0, -1)    # (4, 4), (n, 4, 4)
        dz = jnp.linalg.solve(jnp.eye(4) - jac_f, df[4])
        return (z, s, mis), (dz, ds[4] + jac_s @ dz, jnp.zeros_like(mis))

    return orbit
