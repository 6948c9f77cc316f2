"""Tiered compilation: a quick program for the first call, the optimised one when it is ready.

XLA's CPU compiler spends most of an optics program's compile time optimising it (LLVM
and its fusion emitters): on IOTA the optimised Twiss program compiles in about 15 s and
the same program with LLVM's optimisations off in about 6 s, for a run time 2-2.5x
longer (milliseconds either way). `TieredJit` compiles the quick program first and
answers with it, while a background thread (XLA releases Python's lock while it
compiles) builds the optimised program, which replaces the quick one as soon as it is
ready. Both land in JAX's persistent compilation cache when it is on.

With a persistent cache folder (`jacc._cache`) and a ``persist_key`` (a text naming the
program across processes: the lattice structure and options), the traced program is
also kept, exported with ``jax.export`` beside the cache: a new process then skips
tracing and lowering (seconds for an optics program), and its compilations are cache
hits; once the optimised program has been compiled and cached, a new process takes it
directly. The function's outputs must then be standard containers (dicts, tuples,
lists) of arrays.

``JACC_COMPILE`` selects the behaviour for the whole process:

- ``tiered`` (default): as above (a process that ends while the optimised program is
  being compiled waits for it to finish);
- ``fast``: the quick program only (test suites, short scripts: no background work);
  every other program of the process (tracking, closed orbit, calibration) then also
  compiles with the quick tier's options (`use_quick_flags`, applied when ``jacc`` is
  imported, through ``XLA_FLAGS``);
- ``optimized``: one optimised compilation, waited for (the plain ``jax.jit`` behaviour).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pathlib
import threading
import weakref
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


def use_quick_flags() -> bool:
    """Under ``JACC_COMPILE=fast``, add `FAST_OPTIONS` to ``XLA_FLAGS`` so that every XLA
    compilation of the process is quick (a no-op when they are there already, and without
    effect once JAX has started its CPU backend). Returns whether the flags are set."""
    if compile_mode() != "fast":
        return False
    flags = os.environ.get("XLA_FLAGS", "")
    extra = [f"--{k}={str(v).lower()}" for k, v in FAST_OPTIONS.items() if f"--{k}=" not in flags]
    if extra:
        os.environ["XLA_FLAGS"] = " ".join([flags, *extra]).strip()
    return True


_PENDING: "weakref.WeakSet[threading.Thread]" = weakref.WeakSet()


@atexit.register
def _join_pending() -> None:
    # A thread still inside XLA's compiler when the interpreter finalises aborts the
    # process: a process that ends while an optimised program compiles waits for it
    # (the program then is in the persistent cache for the next process).
    for thread in list(_PENDING):
        thread.join()


def _store_path(persist_key: str | None, signature) -> pathlib.Path | None:
    """Where the exported program of ``persist_key`` and this argument signature is kept,
    or None (no key, or no persistent cache)."""
    folder = jax.config.jax_compilation_cache_dir
    if persist_key is None or not folder:
        return None
    text = repr((persist_key, signature, jax.__version__, jax.default_backend(), FAST_OPTIONS, code_digest()))
    name = hashlib.sha256(text.encode()).hexdigest()[:32]
    path = pathlib.Path(folder) / "jacc-exported"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path / f"{name}.jaxexport"


_CODE: list = []


def code_digest() -> str:
    """A digest of the ``jacc`` package's source files: a program stored by another version
    of the code (which the persist key, a description of the lattice, cannot tell apart) is
    never reused. Read once per process (a few milliseconds)."""
    if not _CODE:
        root = pathlib.Path(__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
        _CODE.append(digest.hexdigest()[:16])
    return _CODE[0]


def _marked(store: pathlib.Path | None) -> bool:
    """Whether the optimised program of ``store`` has been compiled (and so cached)."""
    return store is not None and store.with_suffix(".optimized").exists()


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
        persist_key: names the program across processes (see the module); None: the
            program lives in this process only.
        on_build: called with no argument each time a program is made for a new argument
            signature (traced, or read from the program store).
    """

    def __init__(self, fun: Callable, mode: str | None = None, persist_key: str | None = None,
                 on_build: Callable[[], None] | None = None):
        self._jit = jax.jit(fun)
        self._mode = mode
        self._persist_key = persist_key
        self._on_build = on_build
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
        store = _store_path(self._persist_key, key)
        lowered = self._lower(store, args)
        if self._on_build is not None:
            self._on_build()
        mode = self.mode
        if mode == "optimized" or (mode == "tiered" and _marked(store)):
            entry = _Entry(lowered.compile())  # a cache hit when marked
        else:
            entry = _Entry(lowered.compile(compiler_options=FAST_OPTIONS))
            if mode == "tiered":
                entry.thread = threading.Thread(target=self._optimise, args=(entry, lowered, store),
                                                name="jacc-optimise", daemon=True)
                _PENDING.add(entry.thread)
                entry.thread.start()
        self._entries[key] = entry
        return entry

    def _lower(self, store: pathlib.Path | None, args):
        """The lowered program: from its exported form when one is stored (no tracing)."""
        if store is None:
            return self._jit.lower(*args)
        exported = None
        if store.exists():
            try:
                exported = jax.export.deserialize(bytearray(store.read_bytes()))
            except Exception:  # unreadable or from another JAX: trace again
                exported = None
        if exported is None:
            try:
                exported = jax.export.export(self._jit)(*args)
            except NotImplementedError:  # e.g. host callbacks (diffrax's checks): not storable
                return self._jit.lower(*args)
            try:
                tmp = store.with_suffix(f".{os.getpid()}.tmp")
                tmp.write_bytes(exported.serialize())
                tmp.replace(store)
            except OSError:
                pass  # a read-only cache: this process still runs
        # the same module in every process: its compilations are persistent-cache hits
        return jax.jit(exported.call).lower(*args)

    @staticmethod
    def _optimise(entry: _Entry, lowered, store: pathlib.Path | None) -> None:
        try:
            entry.optimized = lowered.compile()
        except Exception:  # the quick program stays in use
            entry.optimized = None
            return
        if store is not None:
            try:
                store.with_suffix(".optimized").touch()
            except OSError:
                pass

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
