import os
import pathlib

import pytest

# Programs compile once, quick: the optics without background optimisation, and every
# other program (tracking, closed orbit, ORM, LOCO, matching) with the same XLA options
# (LLVM -O0, classic emitters; see jacc._tiered.use_quick_flags, applied when jacc is
# imported). The suite is dominated by compilation: this halves it (SVD orbit correction
# on IOTA: 230 s -> 120 s), for programs that run 1.5-2.5x slower and round differently
# from the optimised ones at the last bit. `JACC_COMPILE=optimized make test` runs the
# suite on XLA's optimised programs.
os.environ.setdefault("JACC_COMPILE", "fast")

import jacc  # noqa: E402,F401  (before JAX starts its backend)
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LATTICES = SHARED / "lattices"


@pytest.fixture(scope="session")
def shared_lattices():
    """Path to ../shared/lattices (reference lattices beside the checkout)."""
    if not LATTICES.is_dir():
        pytest.skip(f"reference lattices not found at {LATTICES}")
    return LATTICES


# Files whose tests share compiled objects across modules (calibrate_common) run together.
_SHARED_GROUPS = {"test_calibrate_bayes": "calibrate", "test_calibrate_loco": "calibrate"}


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``make test`` runs two workers with ``--dist loadgroup``), each
    test file stays on one worker, so its module-scoped fixtures (compiled programs, xtrack
    lines) are built once; files that share compiled models go together."""
    run_slow = os.environ.get("JACC_SLOW") == "1"
    for item in items:
        name = item.path.stem
        item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(name, name)))
        # `@pytest.mark.slow` alone is enough: the compile-heavy checks run in the second
        # step of `make test` (JACC_SLOW=1 -m slow)
        if not run_slow and item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.skip(reason="compile-heavy check: run with JACC_SLOW=1 (make test-slow)"))
