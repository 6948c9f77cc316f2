"""Tiered compilation: a quick program for the first call, the optimised one when it is ready.

XLA's CPU compiler spends most of an optics program's compile time optimising it (LLVM
and its fusion emitters): on IOTA the optimised Twiss program compiles in about 15 s and
the same program with LLVM's optimisations off in about 6 s, for a run time 2-2.5x
longer (milliseconds either way). `TieredJit` compiles the quick program first and
answers with it, while a background thread (XLA releases Python's lock while it
compiles) builds the optimised program, which replaces the quick one as soon as it is
ready. Both land in JAX's persistent compilation cache when it is on.

``JACC_COMPILE`` selects the behaviour for the whole process:

- ``tiered`` (default): as above;
- ``fast``: the quick program only (test suites, short scripts: no background work);
- ``optimized``: one optimised compilation, waited for (the plain ``jax.jit`` behaviour).
"""

from __future__ import annotations

import os
import threading
from typing import Callable

import jax

MODES = ("tiered", "fast", "optimized")
# XLA options of the quick tier: LLVM at -O0 and the classic loop emitters, whose code
# is slower but compiles 2-3x faster than the fusion emitters' optimised code.
FAST_OPTIONS = {"xla_backend_optimization_level": 0, "xla_cpu_use_fusion_emitters": False}


def compile_mode() -> str:
    """The mode named by ``JACC_COMPILE`` (default ``tiered``)."""
    mode = os.environ.get("JACC_COMPILE", "tiered").strip().lower() or "tiered"
    if mode not in MODES:
        raise ValueError(f"JACC_COMPILE must be one of {MODES}, got {mode!r}")
    return mode


class _Entry:
    """The programs of one argument signature."""

    def __init__(self, program):
        self.first = program
        self.program = program
        self.optimized = None
        self.thread: threading.Thread | None = None


class TieredJit:
    """``jax.jit(fun)`` compiled in tiers (see the module); called like the jitted function.

    Args:
        fun: the function to compile (positional array arguments, pytrees allowed).
        mode: ``"tiered"``, ``"fast"`` or ``"optimized"``; None reads ``JACC_COMPILE``.
    """

    def __init__(self, fun: Callable, mode: str | None = None):
        self._jit = jax.jit(fun)
        self._mode = mode
        self._entries: dict = {}
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return compile_mode() if self._mode is None else self._mode

    def __call__(self, *args):
        leaves, tree = jax.tree.flatten(args)
        key = (tree, tuple((getattr(x, "shape", ()), getattr(x, "dtype", type(x))) for x in leaves))
        entry = self._entries.get(key)
        if entry is None:
            entry = self._compile(key, args)
        if entry.optimized is not None:
            entry.program, entry.optimized = entry.optimized, None
        return entry.program(*args)

    def _compile(self, key, args) -> _Entry:
        lowered = self._jit.lower(*args)
        mode = self.mode
        if mode == "optimized":
            entry = _Entry(lowered.compile())
        else:
            entry = _Entry(lowered.compile(compiler_options=FAST_OPTIONS))
            if mode == "tiered":
                entry.thread = threading.Thread(target=self._optimise, args=(entry, lowered),
                                                name="jacc-optimise", daemon=True)
                entry.thread.start()
        self._entries[key] = entry
        return entry

    @staticmethod
    def _optimise(entry: _Entry, lowered) -> None:
        try:
            entry.optimized = lowered.compile()
        except Exception:  # the quick program stays in use
            entry.optimized = None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background compilations; True when every optimised program is in use
        (or none was started)."""
        for entry in list(self._entries.values()):
            if entry.thread is not None:
                entry.thread.join(timeout)
                if entry.optimized is not None:
                    entry.program, entry.optimized = entry.optimized, None
        return all(e.thread is None or not e.thread.is_alive() for e in self._entries.values())

    def lower(self, *args):
        """The lowered program (as ``jax.jit(fun).lower``)."""
        return self._jit.lower(*args)
