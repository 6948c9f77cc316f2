"""Compile a loop nest as one CPU kernel instead of a sequence of XLA thunks.

XLA's CPU runtime runs a program as a sequence of *thunks*, one per fusion, copy or
control-flow op. Inside a loop each thunk costs a fixed dispatch, and a loop body or
branch of more than eight thunks is run by a dataflow executor that costs roughly
0.15 us per thunk (measured here: 100 particles, one thread). A tracking step holds
5 to 15 thunks and a bend 8 per integrator sub-step, so at 1e2 particles dispatch, not
arithmetic, was most of the time.

XLA has a second code path for small loops: a call tagged ``xla_cpu_small_call`` is
emitted as one LLVM function with its control flow (loops, branches) compiled natively,
no dispatch in between. XLA uses it for while loops that access less than 1 kB; here a
call is tagged explicitly, whatever its size (`one_kernel`). Measured on the 2-core
development machine (one thread), 10 turns: 1.7-3.6x faster at 1e2 particles and
1.2-1.4x at 1e4 (IOTA, the FODO ring, a combined-function ring), and compilation is not
slower.

That emitter is XLA's older one and does not implement every operation (scatter,
library calls such as LAPACK or matrix products through Eigen): a function is tagged only
when every primitive of its jaxpr is in `EMITTABLE`, which lists what the tracking loops
use (elementwise arithmetic, slicing, gathers, loops and branches); otherwise it is an
ordinary ``jax.jit`` call. Two more precautions: the call's operands pass through an
optimisation barrier, so that XLA cannot propagate a constant operand into the callee (a
callee parameter left unused makes the emitter abort the process), and the tag is applied
on CPU only (elsewhere the call is inlined as usual).
"""

from __future__ import annotations

import os

import jax
from jax import lax
from jax.extend import core as jex_core

# JACC_ONE_KERNEL=0 turns the tagging off (for comparisons and as an escape hatch).
_ENV = "JACC_ONE_KERNEL"


# Primitives that XLA's computation-kernel emitter compiles without runtime library calls
# (checked on the tracking programs of the FODO ring, IOTA and a combined-function ring
# with every preset). Anything else leaves the call untagged.
EMITTABLE = frozenset({
    # elementwise
    "abs", "add", "sub", "mul", "div", "neg", "sign", "max", "min", "rem", "pow", "integer_pow",
    "sqrt", "rsqrt", "cbrt", "exp", "exp2", "log", "log1p", "expm1", "sin", "cos", "tan",
    "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "floor", "ceil", "round",
    "is_finite", "select_n", "clamp", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not",
    "xor", "convert_element_type", "complex", "real", "imag", "conj", "square", "logistic",
    "copy", "copy_p", "stop_gradient",
    # shapes, slicing, reductions
    "broadcast_in_dim", "reshape", "squeeze", "expand_dims", "concatenate", "stack", "pad",
    "slice", "dynamic_slice", "dynamic_update_slice", "gather", "iota", "transpose", "rev",
    "reduce_sum", "reduce_max", "reduce_min", "reduce_and", "reduce_or", "reduce_prod",
    # structure
    "jit", "pjit", "closed_call", "core_call", "cond", "while", "scan", "remat2", "checkpoint",
    "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "optimization_barrier",
    "xla_metadata_value",
})


def _primitives(jaxpr, acc: set) -> set:
    for eqn in jaxpr.eqns:
        acc.add(eqn.primitive.name)
    for sub in jex_core.subjaxprs(jaxpr):
        _primitives(sub, acc)
    return acc


def emittable(closed_jaxpr) -> bool:
    """Whether every primitive of ``closed_jaxpr`` (nested ones included) is in `EMITTABLE`."""
    return _primitives(closed_jaxpr.jaxpr, set()) <= EMITTABLE


def enabled() -> bool:
    """Whether `one_kernel` tags calls (CPU backend and ``JACC_ONE_KERNEL`` not ``0``)."""
    return os.environ.get(_ENV, "1") != "0" and jax.default_backend() == "cpu"


def one_kernel(fn, static_argnums: tuple[int, ...] = ()):
    """``fn`` as a jitted call that XLA's CPU backend compiles into one kernel.

    Same signature and result as ``fn``; differentiable and vmappable like any
    ``jax.jit`` function (derivatives are compiled the usual way). ``static_argnums``
    as for ``jax.jit``.
    """
    from jax.experimental.xla_metadata import set_xla_metadata

    static = tuple(static_argnums)
    inner = jax.jit(fn, static_argnums=static)

    def call(*args):
        if not enabled() or not emittable(inner.trace(*args).jaxpr):
            return inner(*args)
        traced = [i for i in range(len(args)) if i not in static]
        shielded = lax.optimization_barrier([args[i] for i in traced])
        args = list(args)
        for i, v in zip(traced, shielded):
            args[i] = v
        out = inner(*args)
        return set_xla_metadata(out, xla_cpu_small_call="true", inlineable="false")

    return call
