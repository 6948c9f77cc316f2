import os
import pathlib

import pytest

import jax

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
