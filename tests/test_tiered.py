"""Tiered compilation (`jacc._tiered`): the quick and the optimised program agree, the
optimised one replaces the quick one, and the mode is read from JACC_COMPILE."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jacc  # noqa: F401  (float64)
from jacc._tiered import TieredJit, compile_mode


def _fun(x, y):
    for i in range(5):
        x = jnp.sin(x) * y + jnp.cos(x * (i + 1))
    return {"sum": jnp.sum(x), "x": x}


ARGS = (jnp.linspace(0.0, 1.0, 7), jnp.asarray(0.3))


@pytest.mark.parametrize("mode", ["tiered", "fast", "optimized"])
def test_each_mode_gives_the_jitted_result(mode):
    f = TieredJit(_fun, mode=mode)
    ref = jax.jit(_fun)(*ARGS)
    out = f(*ARGS)
    f.wait()
    again = f(*ARGS)
    for o in (out, again):
        # XLA's optimisation level may reassociate nothing here (no fast math): rounding only
        np.testing.assert_allclose(np.asarray(o["x"]), np.asarray(ref["x"]), rtol=1e-14, atol=1e-15)


def test_optimised_program_replaces_the_quick_one():
    f = TieredJit(_fun, mode="tiered")
    f(*ARGS)
    (entry,) = f._entries.values()
    assert f.wait(timeout=120)
    f(*ARGS)
    assert entry.program is not entry.first
    assert entry.thread is not None and not entry.thread.is_alive()


def test_new_shapes_compile_a_new_program():
    f = TieredJit(_fun, mode="fast")
    f(*ARGS)
    f(jnp.linspace(0.0, 1.0, 9), jnp.asarray(0.3))
    assert len(f._entries) == 2
    f(jnp.linspace(0.0, 2.0, 9), jnp.asarray(0.5))  # values only: no new program
    assert len(f._entries) == 2


def test_compile_mode_from_the_environment(monkeypatch):
    monkeypatch.setenv("JACC_COMPILE", "Fast")
    assert compile_mode() == "fast"
    monkeypatch.setenv("JACC_COMPILE", "sometimes")
    with pytest.raises(ValueError, match="JACC_COMPILE must be one of"):
        compile_mode()


_CHILD = """
import sys, time, jax, jax.numpy as jnp
import jacc
from jacc._tiered import TieredJit
def fun(x, y):
    for i in range(40):
        x = jnp.sin(x) * y + jnp.cos(x * (i + 1))
    return {"x": x, "s": jnp.sum(x)}
f = TieredJit(fun, mode=sys.argv[1], persist_key="test-program")
out = f(jnp.linspace(0.0, 1.0, 5), jnp.asarray(0.3))
f.wait()
print(repr(float(out["s"])), f._entries and type(next(iter(f._entries.values())).first).__name__)
"""


def test_exported_program_is_reused_by_a_new_process(tmp_path):
    """With a cache folder, the first process exports the traced program and marks the
    optimised one compiled; a second process reads it back and gives the same numbers."""
    import subprocess
    import sys

    env = dict(__import__("os").environ, JACC_COMPILATION_CACHE=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", _CHILD, "tiered"], env=env, capture_output=True,
                           text=True, timeout=300) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    assert runs[0].stdout.split()[0] == runs[1].stdout.split()[0]
    store = tmp_path / "jacc-exported"
    assert len(list(store.glob("*.jaxexport"))) == 1
    assert len(list(store.glob("*.optimized"))) == 1


def test_stored_programs_are_keyed_by_the_code(tmp_path, monkeypatch):
    """A program stored by another version of jacc's source is not reused: the store path
    depends on a digest of the package's files as well as on the persist key."""
    from jacc import _tiered

    folder = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    try:
        _check_code_key(tmp_path, monkeypatch, _tiered)
    finally:
        jax.config.update("jax_compilation_cache_dir", folder)


def _check_code_key(tmp_path, monkeypatch, _tiered):
    digest = _tiered.code_digest()
    assert len(digest) == 16 and digest == _tiered.code_digest()
    key = (None, ())
    here = _tiered._store_path("program", key)
    monkeypatch.setattr(_tiered, "_CODE", ["another-version"])
    other = _tiered._store_path("program", key)
    assert here is not None and other is not None and here != other
    assert here.parent == other.parent == tmp_path / "jacc-exported"


def test_programs_with_host_callbacks_run_without_being_stored(tmp_path):
    """jax.export cannot serialise host callbacks (diffrax's runtime checks in a FieldMap's
    integration use them): such a program runs, traced as usual, and is not kept."""
    def fun(x):
        y = jax.pure_callback(lambda v: np.asarray(v) * 2.0, jax.ShapeDtypeStruct(x.shape, x.dtype), x)
        return jnp.sin(y)

    folder = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", str(tmp_path))
    try:
        f = TieredJit(fun, mode="fast", persist_key="with-callback")
        out = f(jnp.linspace(0.0, 1.0, 5))
    finally:
        jax.config.update("jax_compilation_cache_dir", folder)
    np.testing.assert_allclose(np.asarray(out), np.sin(2.0 * np.linspace(0.0, 1.0, 5)), rtol=1e-15)
    assert not list((tmp_path / "jacc-exported").glob("*.jaxexport"))
