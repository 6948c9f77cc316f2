"""Everyday corrections on the matching machinery: tune and chromaticity knobs, SVD orbit
correction, closed-orbit bumps.

- `KnobResponse` (`tune_knobs`, `chroma_knobs`): the Jacobian of summary optics quantities
  w.r.t. a set of knobs (by forward-mode AD through the optics), and the minimum-norm knob
  changes that move them by a requested amount; `set_tunes` / `set_chromaticity` then finish
  exactly with `jacc.match`.
- `correct_orbit`: closed orbit at the BPMs, ORM by ``jacfwd`` of the closed orbit,
  truncated-SVD least squares for the corrector kicks, iterated (the orbit is not exactly
  linear in the kicks with sextupoles and misalignments).
- `orbit_bump`: three (position) or four (position and angle) correctors that move the orbit
  at one element and leave it unchanged after the last corrector, solved by `jacc.match`.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jacc.lattice import Lattice
from jacc.match import MatchOptions, MatchResult, Target, Vary, match
from jacc.match._knobs import apply_values, current_values, flagged_copy, parse_knobs

__all__ = ["KnobResponse", "OrbitCorrection", "chroma_knobs", "correct_orbit", "orbit_bump",
           "set_chromaticity", "set_tunes", "tune_knobs"]


class KnobResponse:
    """Linear response of summary optics quantities (``qx``, ``dqy``...) to knobs.

    Args:
        lat, rp: lattice and reference particle.
        knobs: the knobs (any spelling `jacc.match` accepts).
        quantities: Twiss summary names.
        model: engine preset.

    Attributes:
        matrix: d(quantities)/d(knobs), shape (n_quantities, n_knobs) [units of the
            quantity per unit of the knob].
        values: the quantities at the lattice's knob values.
    """

    def __init__(self, lat: Lattice, rp, knobs, quantities: Sequence[str] = ("qx", "qy"), *, model=None):
        from jacc.containers import TWISS_SUMMARY
        from jacc.engine import TrackingEngine
        from jacc.optics import TwissOptions

        bad = [q for q in quantities if q not in TWISS_SUMMARY]
        if bad:
            raise ValueError(f"KnobResponse: {bad} are not summary quantities; valid: {list(TWISS_SUMMARY)}")
        self.lattice, self.quantities = lat, tuple(quantities)
        self.varies = parse_knobs(knobs)
        engine = TrackingEngine(flagged_copy(lat, self.varies), rp, model)
        spec, _, dynamic = engine.make_model()
        chrom = any(q in ("dqx", "dqy") for q in self.quantities)
        g = engine.make_twiss_func(spec, options=TwissOptions(chrom=chrom))
        keys = [v.key for v in self.varies]

        def f(x):
            d = dict(dynamic)
            for i, k in enumerate(keys):
                d[k] = x[i]
            tw = g(d)
            return jnp.stack([getattr(tw, q) for q in self.quantities])

        self.x0 = np.array(current_values(lat, self.varies))
        jac, val = jax.jit(jax.jacfwd(lambda x: (f(x), f(x)), has_aux=True))(jnp.asarray(self.x0))
        self.matrix, self.values = np.asarray(jac), np.asarray(val)

    @property
    def keys(self) -> list[str]:
        return [v.key for v in self.varies]

    def deltas(self, change) -> np.ndarray:
        """Minimum-norm knob changes for a change of the quantities (first order)."""
        change = np.asarray(change, dtype=float)
        if change.shape != (len(self.quantities),):
            raise ValueError(f"change: expected {len(self.quantities)} values for {self.quantities}")
        return np.linalg.pinv(self.matrix) @ change

    def apply(self, change, lat: Lattice | None = None) -> Lattice:
        """A copy of the lattice with the knobs moved by `deltas` ``(change)``."""
        lat = self.lattice if lat is None else lat
        return apply_values(lat, self.varies, np.array(current_values(lat, self.varies)) + self.deltas(change))


def tune_knobs(lat: Lattice, rp, knobs, *, model=None) -> KnobResponse:
    """Tune knobs: the response of ``(qx, qy)`` to ``knobs`` (e.g. two quadrupole families)."""
    return KnobResponse(lat, rp, knobs, ("qx", "qy"), model=model)


def chroma_knobs(lat: Lattice, rp, knobs, *, model=None) -> KnobResponse:
    """Chromaticity knobs: the response of ``(dqx, dqy)`` to ``knobs`` (sextupole families)."""
    return KnobResponse(lat, rp, knobs, ("dqx", "dqy"), model=model)


def set_tunes(lat: Lattice, rp, qx: float, qy: float, knobs, **match_kwargs) -> MatchResult:
    """Match the tunes to ``(qx, qy)`` with ``knobs`` (see `jacc.match`)."""
    return match(lat, rp, knobs=knobs, targets={"qx": qx, "qy": qy}, **match_kwargs)


def set_chromaticity(lat: Lattice, rp, dqx: float, dqy: float, knobs, **match_kwargs) -> MatchResult:
    """Match the chromaticities (dQ/d delta) to ``(dqx, dqy)`` with ``knobs``."""
    return match(lat, rp, knobs=knobs, targets={"dqx": dqx, "dqy": dqy}, **match_kwargs)


@dataclasses.dataclass(frozen=True)
class OrbitCorrection:
    """Outcome of `correct_orbit`.

    Attributes:
        lattice: the lattice with the corrector kicks applied.
        kicks: ``{"ca1r:1.xangle": value, ...}`` final kicks [rad].
        orbit_before, orbit_after: ``x`` then ``y`` at the BPMs [m].
        rms_before, rms_after: rms orbit per plane ``{"x": ..., "y": ...}`` [m].
        singular_values: of the ORM used (all of them; ``n_singular`` were kept).
        n_singular: singular values kept.
        iterations: correction rounds done.
    """

    lattice: Lattice
    kicks: dict
    orbit_before: np.ndarray
    orbit_after: np.ndarray
    rms_before: dict
    rms_after: dict
    singular_values: np.ndarray
    n_singular: int
    iterations: int

    def __str__(self) -> str:
        return (f"orbit correction ({self.n_singular} singular values, {self.iterations} rounds): rms x "
                f"{self.rms_before['x']:.3e} -> {self.rms_after['x']:.3e} m, rms y "
                f"{self.rms_before['y']:.3e} -> {self.rms_after['y']:.3e} m")


def _rms(orbit, nb):
    return {"x": float(np.sqrt(np.mean(orbit[:nb] ** 2))), "y": float(np.sqrt(np.mean(orbit[nb:] ** 2)))}


_RESPONSES: dict = {}


def correct_orbit(lat: Lattice, rp, *, correctors=None, bpms=None, planes: str = "xy",
                  n_singular: int | None = None, iterations: int = 3, response=None,
                  model=None) -> OrbitCorrection:
    """SVD orbit correction: kicks that minimise the rms closed orbit at the BPMs.

    Args:
        lat, rp: the machine (with its errors: misalignments, kicks...).
        correctors, bpms, planes: see `jacc.calibrate.orm.select_layout`.
        n_singular: singular values kept (default all): fewer give weaker, smoother
            corrections that are less sensitive to BPM noise.
        iterations: correction rounds (each re-measures the orbit and the response).
        response: an ORM to use instead of the machine's own (e.g. a model ORM),
            shape (2 n_bpms, n_kicks), rows x then y, columns h then v kicks.
        model: engine preset.
    """
    from jacc.calibrate.orm import OrbitResponse

    if int(iterations) < 1:
        raise ValueError(f"correct_orbit: iterations must be >= 1, got {iterations}")
    key = (lat.to_json(), repr(rp), repr(bpms), repr(correctors), planes, repr(model))
    if key not in _RESPONSES:
        resp = OrbitResponse(lat, rp, bpms=bpms, correctors=correctors, planes=planes, model=model)
        _RESPONSES.clear()  # one machine at a time: correcting it again reuses the programs
        _RESPONSES[key] = (resp, jax.jit(lambda d: resp.bpm_orbit(d)), jax.jit(resp.orm))
    resp, orbit, orm = _RESPONSES[key]
    lay = resp.layout
    nb = lay.n_bpms
    rows = np.concatenate([np.arange(nb) if "x" in planes else [],
                           nb + np.arange(nb) if "y" in planes else []]).astype(int)
    d = dict(resp.dynamic)
    k = np.asarray(resp.kicks(d))
    before = np.asarray(orbit(d))
    s_all = None
    for _ in range(int(iterations)):
        r = np.asarray(orm(d) if response is None else response)
        if r.shape != lay.shape:
            raise ValueError(f"correct_orbit: response must have shape {lay.shape}, got {r.shape}")
        u, s, vt = np.linalg.svd(r[rows], full_matrices=False)
        s_all = s
        n = len(s) if n_singular is None else int(n_singular)
        if not 1 <= n <= len(s):
            raise ValueError(f"correct_orbit: n_singular must be in 1..{len(s)}, got {n_singular}")
        z = np.asarray(orbit(d))[rows]
        k = k - vt[:n].T @ ((u[:, :n].T @ z) / s[:n])
        d = resp.with_kicks(d, jnp.asarray(k))
    after = np.asarray(orbit(d))
    varies = [Vary(key.rsplit(".", 1)[0], key.rsplit(".", 1)[1]) for key in lay.kick_keys]
    return OrbitCorrection(apply_values(lat, varies, k), dict(zip(lay.kick_keys, map(float, k))),
                           before, after, _rms(before, nb), _rms(after, nb), s_all,
                           len(s_all) if n_singular is None else int(n_singular), int(iterations))


def orbit_bump(lat: Lattice, rp, at: str, *, plane: str = "x", position: float = 0.0,
               angle: float | None = None, correctors: Sequence[str] | None = None,
               **match_kwargs) -> MatchResult:
    """Closed-orbit bump: move the orbit at ``at`` and leave it unchanged after the bump.

    Args:
        lat, rp: lattice and reference particle.
        at: the element (placement key or a definition placed once) where the orbit moves.
        plane: ``"x"`` or ``"y"``.
        position: orbit change at ``at`` [m].
        angle: also set the orbit angle change there [rad] (needs four correctors).
        correctors: three (position) or four (position and angle) corrector placements,
            around ``at``; default: the nearest ones that kick in ``plane``, two before
            ``at`` and one (or two) after.
        match_kwargs: `jacc.match` options (solver, ``progress``...).

    Returns:
        the `MatchResult`; ``result.lattice`` has the bump.
    """
    from jacc.match._targets import row_of
    from jacc.optics import TwissOptions

    if plane not in ("x", "y"):
        raise ValueError(f"orbit_bump: plane must be 'x' or 'y', got {plane!r}")
    field = "xangle" if plane == "x" else "yangle"
    kinds = ("HKicker", "HVCorrector") if plane == "x" else ("VKicker", "HVCorrector")
    n_corr = 3 if angle is None else 4
    i_at = row_of(lat, at) - 1
    cands = [p for p in lat.elements if p.element_name in kinds]
    if correctors is None:
        before = [p for p in cands if p.index < i_at][-2:]
        after = [p for p in cands if p.index > i_at][: n_corr - 2]
        chosen = before + after
        if len(chosen) != n_corr:
            raise ValueError(f"orbit_bump: not enough {plane} correctors around '{at}' "
                             f"(found {[p.key for p in chosen]})")
    else:
        chosen = []
        for c in correctors:
            p = lat[c] if ":" in c else lat[f"{c}:1"]
            if p.element_name not in kinds:
                raise ValueError(f"orbit_bump: '{c}' is a {p.element_name}, which does not kick in {plane}")
            chosen.append(p)
        if len(chosen) != n_corr:
            raise ValueError(f"orbit_bump: {n_corr} correctors needed for "
                             f"{'position' if angle is None else 'position and angle'}, got {len(chosen)}")
    chosen = sorted(chosen, key=lambda p: p.index)
    if not (chosen[0].index < i_at < chosen[-1].index):
        raise ValueError(f"orbit_bump: '{at}' must lie between the first and last corrector")
    last = chosen[-1].index
    options = match_kwargs.pop("options", None) or MatchOptions(**match_kwargs)
    if not options.twiss:
        options = dataclasses.replace(options, twiss={"options": TwissOptions(chrom=False)})
    base = _orbit_rows(lat, rp, [i_at + 1, last + 1], plane, options)
    u, pu = ("x", "px") if plane == "x" else ("y", "py")
    targets = [Target(u, base[0][0] + position, at=int(i_at), label=f"{u}@{at}"),
               Target(u, base[1][0], at=int(last), label=f"{u}@{chosen[-1].key} (closure)"),
               Target(pu, base[1][1], at=int(last), label=f"{pu}@{chosen[-1].key} (closure)")]
    if angle is not None:
        targets.append(Target(pu, base[0][1] + angle, at=int(i_at), label=f"{pu}@{at}"))
    knobs = [Vary(p.key, field, step=1e-4) for p in chosen]
    return match(lat, rp, knobs=knobs, targets=targets, options=options)


def _orbit_rows(lat, rp, rows, plane, options):
    """Orbit (u, pu) at Twiss rows ``rows`` of the unbumped lattice."""
    from jacc.optics import twiss

    tw = twiss(lat, rp, model=options.model, **({} if not options.twiss else
                                                {k: v for k, v in options.twiss.items() if k == "options"}))
    u, pu = (tw.x, tw.px) if plane == "x" else (tw.y, tw.py)
    return [(float(u[r]), float(pu[r])) for r in rows]
