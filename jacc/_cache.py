"""JAX's persistent compilation cache, on by default in a per-user folder.

JACC's optics and tracking programs take seconds to compile; with the cache on, a new
Python process that compiles the same program (same lattice structure, JAX version and
XLA flags) loads the executable from disk instead.

``JACC_COMPILATION_CACHE`` chooses the folder:

- unset or empty: ``$XDG_CACHE_HOME/jacc/xla`` (``~/.cache/jacc/xla`` without
  ``XDG_CACHE_HOME``);
- a path: that folder (created if needed);
- ``off`` (also ``0``, ``false``, ``no``, ``none``, ``disable``): JACC leaves the cache off.

A cache folder already configured through JAX itself (``JAX_COMPILATION_CACHE_DIR`` or
``jax.config.update("jax_compilation_cache_dir", ...)`` before importing ``jacc``) is kept,
with JAX's thresholds. A folder that cannot be created or written gives a warning and no
cache; importing ``jacc`` never fails because of it.
"""

from __future__ import annotations

import os
import pathlib
import warnings

import jax

ENV = "JACC_COMPILATION_CACHE"
OFF = ("off", "0", "false", "no", "none", "disable", "disabled")
# JAX's defaults skip programs that compile in under 1 s; JACC's first calls are made of one
# long compilation and a few short ones (array staging, 5-20 ms each, 2 kB on disk), and
# reading an entry costs less than compiling it, so every program is written.
MIN_COMPILE_TIME_S = 0.0
MIN_ENTRY_SIZE_BYTES = -1  # JAX's code for "no size limit, no override by the filesystem"


def default_dir() -> pathlib.Path:
    """The per-user folder: ``$XDG_CACHE_HOME/jacc/xla`` or ``~/.cache/jacc/xla``."""
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    root = pathlib.Path(base) if base else pathlib.Path.home() / ".cache"
    return root / "jacc" / "xla"


def requested_dir(environ=None) -> pathlib.Path | None:
    """The folder ``JACC_COMPILATION_CACHE`` asks for (None for ``off``)."""
    value = (os.environ if environ is None else environ).get(ENV, "").strip()
    if value.lower() in OFF:
        return None
    return pathlib.Path(value).expanduser() if value else default_dir()


def enable(environ=None) -> str | None:
    """Turn the persistent cache on as ``JACC_COMPILATION_CACHE`` says.

    Returns the folder in use (JAX's own when the user configured one), or None when the
    cache stays off.
    """
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return configured
    path = requested_dir(environ)
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(f"no write permission on {path}")
    except OSError as err:
        warnings.warn(f"jacc: compilation cache disabled: cannot use {str(path)!r} ({err}); set "
                      f"{ENV} to a writable folder or to 'off'", RuntimeWarning, stacklevel=3)
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # thresholds the user set through JAX's environment variables are kept
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_TIME_S)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", MIN_ENTRY_SIZE_BYTES)
    return str(path)
