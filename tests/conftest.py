import os
import pathlib

import pytest

# Optics programs compile once, quick (no background optimisation, see jacc._tiered):
# the suite is dominated by compilation, and its programs run for milliseconds.
os.environ.setdefault("JACC_COMPILE", "fast")

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
    for item in items:
        name = item.path.stem
        item.add_marker(pytest.mark.xdist_group(_SHARED_GROUPS.get(name, name)))
