"""Contract between element physics and integration methods.

Every map acts on ONE particle: a 6-vector in MAD-X canonical coordinates
``(x, px, y, py, t, pt)`` (see :mod:`jacc.particles`), batched by the caller with
``jax.vmap``. Element parameters arrive as a ``dict`` of scalar arrays keyed by the
element's field names (MAD-X names: ``l``, ``k1``, ``angle``...), so a map is a pure
function of ``(params, x)`` and every parameter can be differentiated.

An element's physics (``ElementPhysics``) provides pieces: an entry and exit map
(edges, fringe), a drift of a fraction of the body and a kick of a fraction of the
body, and optionally its exact linear map. An integration method (``Method``) composes
the pieces: ``Linear()`` applies the exact 6x6 matrix, ``DriftKick(order, slices)``
builds a symmetric split of order 2 or 4 from the drift and kick pieces.

PERFORMANCE RULE (measured: 10x throughput at stake): inside a map, never update the
6-vector with ``x.at[i].set/add`` (it lowers to scatters that XLA cannot fuse under vmap).
Unpack the components, ``x_, px, y, py, t, pt = x``, compute, and return
``jnp.stack([x_, px, y, py, t, pt])``. The engine keeps particles as six separate arrays,
and stack-then-unpack pairs fold away when kernels are written this way.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp


class Reference(NamedTuple):
    """Reference-particle constants that the maps need (plain floats, static).

    Attributes:
        beta0: relativistic beta of the reference particle.
        gamma0: relativistic gamma of the reference particle.
        p0c: reference momentum times c [eV].
        mass0: rest energy [eV].
        charge: charge in units of the elementary charge (signed).
    """

    beta0: float
    gamma0: float
    p0c: float
    mass0: float
    charge: float


Params = dict  # field name -> scalar array


class ElementPhysics(eqx.Module):
    """The physics of one element type, split into pieces an integrator composes.

    Subclasses set ``fields`` (the parameter names read from ``params``, MAD-X names) and
    ``thick`` (whether the body has a length). Options that change the model (edge model,
    exact or expanded drift) are static fields of the subclass.
    """

    fields: ClassVar[tuple[str, ...]] = ()
    thick: ClassVar[bool] = False
    # False where ``drift`` alone is the flow of the whole body (drift, solenoid), so that
    # ``Flow()`` may apply it in one step.
    has_kick: ClassVar[bool] = True

    def entry(self, p: Params, x, ref: Reference):
        """Map at the entrance face (edges, fringe fields). Identity by default."""
        return x

    def exit(self, p: Params, x, ref: Reference):
        """Map at the exit face. Identity by default."""
        return x

    def entry_inverse(self, p: Params, x, ref: Reference):
        """Inverse of `entry` (fixed-point iterations unless overridden with a closed form)."""
        return invert_face(self.entry, p, x, ref)

    def exit_inverse(self, p: Params, x, ref: Reference):
        """Inverse of `exit` (fixed-point iterations unless overridden with a closed form)."""
        return invert_face(self.exit, p, x, ref)

    def drift(self, p: Params, x, frac, ref: Reference):
        """Flow of the integrable part over ``frac`` of the body length."""
        return x

    def kick(self, p: Params, x, frac, ref: Reference):
        """Flow of the kick part over ``frac`` of the body (thin elements: frac = 1)."""
        return x

    def drift_setup(self, p: Params, frac, ref: Reference):
        """What `drift` over ``frac`` computes without the coordinates (a bend's frame
        rotations), for `drift_with`. An integrator that repeats a few fractions many
        times computes these once, side by side. Default: ``frac`` itself."""
        return frac

    def drift_with(self, p: Params, x, setup, ref: Reference):
        """`drift` from the output of `drift_setup`."""
        return self.drift(p, x, setup, ref)

    def matrix(self, p: Params, ref: Reference):
        """Exact 6x6 linear map of the body (entry/exit excluded), or ``NotImplemented``.
        """
        return NotImplemented

    def simplify(self, method: "Method", constants: dict) -> tuple["ElementPhysics", "Method"]:
        """A cheaper ``(physics, method)`` giving the same map, knowing some fields' values.

        ``constants`` holds the fields that are compile-time constants (not flagged, not driven
        by a differentiable knob). The replacement must agree with the original map to
        rounding. Default: no simplification.
        """
        return self, method

    def offset(self, p: Params, ref: Reference):
        """Constant term ``c`` of the body's linear map ``x -> matrix @ x + c`` (a 6-vector).

        Zero unless the element kicks the reference particle (correctors, RF cavities off
        the zero crossing): ``c`` is then the first-order image of the reference orbit.
        """
        return jnp.zeros(6)


class DividedPieces:
    """An element's pieces over ``frac / divisor`` of what is asked: ``divisor = -1`` runs
    them backwards (each flow over ``-frac`` is the inverse flow), ``divisor = n`` gives one
    of ``n`` equal slices of the body."""

    def __init__(self, phys: ElementPhysics, divisor: float):
        self._phys, self._divisor = phys, divisor

    def drift(self, p, x, frac, ref):
        return self._phys.drift(p, x, frac / self._divisor, ref)

    def kick(self, p, x, frac, ref):
        return self._phys.kick(p, x, frac / self._divisor, ref)

    def drift_setup(self, p, frac, ref):
        return self._phys.drift_setup(p, frac / self._divisor, ref)

    def __getattr__(self, name):
        return getattr(self._phys, name)


def has_face(phys: ElementPhysics, side: str) -> bool:
    """Whether ``phys`` overrides its ``side`` (``"entry"`` or ``"exit"``) face map."""
    return getattr(type(phys), side) is not getattr(ElementPhysics, side)


# Fixed-point iterations that invert an entry/exit map y = f(x): x <- x - (f(x) - y). Edge
# maps change momenta as functions of positions (a nilpotent Jacobian minus identity), so
# the iteration is exact after two steps for linear edges and converges quadratically fast
# for the nonlinear ones; six steps leave rounding only.
_FACE_INVERSE_STEPS = 6


def fixed_point_inverse(f, y):
    """``x`` with ``f(x) == y``, by `_FACE_INVERSE_STEPS` fixed-point iterations."""
    x = y
    for _ in range(_FACE_INVERSE_STEPS):
        x = x - (f(x) - y)
    return x


def invert_face(face, p, y, ref):
    """``x`` with ``face(p, x, ref) == y`` (`fixed_point_inverse`)."""
    return fixed_point_inverse(lambda z: face(p, z, ref), y)


class Method(eqx.Module):
    """An integration method: composes an element's pieces into its full map.

    ``palindromic`` methods (symmetric compositions of flows) are inverted by running the
    same composition with every fraction negated; `inverse` gives the element's inverse map,
    which lets reverse mode re-track backwards instead of storing states.
    """

    palindromic: ClassVar[bool] = False

    def body(self, phys: ElementPhysics, p: Params, x, ref: Reference):
        raise NotImplementedError

    def inverse_body(self, phys: ElementPhysics, p: Params, x, ref: Reference):
        """Inverse of `body`; palindromic methods negate the fractions of their pieces."""
        if not self.palindromic:
            raise NotImplementedError(f"{type(self).__name__} has no inverse")
        return self.body(DividedPieces(phys, -1.0), p, x, ref)

    def one_slice(self) -> "tuple[Method, int] | None":
        """``(m, n)`` when this body is ``n`` identical slices, each ``m`` applied to ``1/n``
        of the element (`jacc.optics` evaluates the slices side by side); else None."""
        return None

    def __call__(self, phys: ElementPhysics, p: Params, x, ref: Reference):
        x = phys.entry(p, x, ref)
        x = self.body(phys, p, x, ref)
        return phys.exit(p, x, ref)

    def inverse(self, phys: ElementPhysics, p: Params, x, ref: Reference):
        """The inverse of this method's map of ``phys``: ``inverse(call(x)) == x``."""
        if has_face(phys, "exit"):
            x = phys.exit_inverse(p, x, ref)
        x = self.inverse_body(phys, p, x, ref)
        if has_face(phys, "entry"):
            x = phys.entry_inverse(p, x, ref)
        return x


def _yoshida4_coefficients():
    # Yoshida (1990) fourth-order triple jump: w1 = 1/(2 - 2^(1/3)), w0 = 1 - 2 w1.
    w1 = 1.0 / (2.0 - 2.0 ** (1.0 / 3.0))
    w0 = 1.0 - 2.0 * w1
    drifts = (w1 / 2, (w0 + w1) / 2, (w0 + w1) / 2, w1 / 2)
    kicks = (w1, w0, w1)
    return drifts, kicks


class DriftKick(Method):
    """Symmetric drift-kick split of order 2 (leapfrog) or 4 (Yoshida), ``slices`` per body."""

    palindromic: ClassVar[bool] = True

    order: int = eqx.field(static=True, default=2)
    slices: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if self.order not in (2, 4):
            raise ValueError(f"DriftKick: order must be 2 or 4, got {self.order!r}")
        if int(self.slices) != self.slices or self.slices < 1:
            raise ValueError(f"DriftKick: slices must be a positive integer, got {self.slices!r}")

    def one_slice(self):
        return (DriftKick(order=self.order, slices=1), self.slices) if self.slices > 1 else None

    def body(self, phys, p, x, ref):
        if self.order == 2:
            drifts, kicks = (0.5, 0.5), (1.0,)
        else:
            drifts, kicks = _yoshida4_coefficients()
        h = 1.0 / self.slices
        for _ in range(self.slices):
            for i, k in enumerate(kicks):
                x = phys.drift(p, x, drifts[i] * h, ref)
                x = phys.kick(p, x, k * h, ref)
            x = phys.drift(p, x, drifts[-1] * h, ref)
        return x


class Linear(Method):
    """The element's exact 6x6 linear map (first order about the reference orbit)."""

    def body(self, phys, p, x, ref):
        m = phys.matrix(p, ref)
        if m is NotImplemented:
            raise TypeError(f"{type(phys).__name__} has no exact linear map; use DriftKick()")
        return m @ x + phys.offset(p, ref)

    def inverse_body(self, phys, p, x, ref):
        m = phys.matrix(p, ref)
        j = symplectic_form()
        # the inverse of a symplectic matrix is -J M^T J
        return -(j @ m.T @ j) @ (x - phys.offset(p, ref))


class Flow(Method):
    """The exact flow of the whole body in one step, for elements without a kick part.

    Drifts and solenoids are integrable: their ``drift`` piece over the full length is the
    element's map, so splitting it (``DriftKick``) only costs time.
    """

    palindromic: ClassVar[bool] = True

    def body(self, phys, p, x, ref):
        if phys.has_kick:
            raise TypeError(f"{type(phys).__name__} has a kick part; use DriftKick() or Linear()")
        return phys.drift(p, x, 1.0, ref)


def symplectic_form(n: int = 6):
    """The standard symplectic matrix J for ``n`` canonical coordinates (n even)."""
    j2 = jnp.array([[0.0, 1.0], [-1.0, 0.0]])
    return jnp.kron(jnp.eye(n // 2), j2)
