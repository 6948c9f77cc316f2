"""JAX's persistent compilation cache as `import jacc` configures it (`jacc._cache`).

Each check runs in a fresh Python process: the cache is configured once per process, at
import, and what matters is what a second process finds on disk.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from jacc import _cache

# A 4-cell FODO ring with sector bends, sextupoles and a BPM per cell (1 GeV electrons).
FODO4 = "\n".join([
    "beam, particle=electron, energy=1.0;",
    "qf: quadrupole, l=0.5, k1=0.5;",
    "qd: quadrupole, l=0.5, k1=-0.5;",
    "mb: sbend, l=3.6, angle=pi/8;",
    "sf: sextupole, l=0.2, k2=0.3;",
    "bpm: monitor;",
    "ring: sequence, l=40.0, refer=entry;",
    *(f"qf, at={10 * i}; mb, at={10 * i + 0.9}; sf, at={10 * i + 4.6}; bpm, at={10 * i + 4.8}; "
      f"qd, at={10 * i + 5.0}; mb, at={10 * i + 5.9};" for i in range(4)),
    "endsequence;",
])

# The child counts JAX's compilation-cache events (jax.monitoring) and reports them with the
# folder JAX was configured with and the time of the first Twiss call.
CHILD = r"""
import json, sys, time
import jax
from jax import monitoring
events = {}
monitoring.register_event_listener(lambda e, **kw: events.__setitem__(e, events.get(e, 0) + 1))
import jacc
kind, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if kind == "twiss":
    lat = jacc.Lattice.from_madx(path)
    tw = jacc.twiss(lat, jacc.lattices.reference_from_beam(lat))
    assert 0 < float(tw.qx) < 4 and 0 < float(tw.qy) < 4
else:  # a small jitted program: enough to leave an entry when the cache is on
    float(jax.jit(lambda x: jax.numpy.sin(x) * 2.0)(0.3))
out = {"dir": jax.config.jax_compilation_cache_dir, "time_s": time.perf_counter() - t0,
       "hits": events.get("/jax/compilation_cache/cache_hits", 0),
       "misses": events.get("/jax/compilation_cache/cache_misses", 0)}
print("RESULT " + json.dumps(out))
"""


def run_child(kind: str, env_update: dict, lattice: pathlib.Path | None = None, drop=()) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("JACC_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR", *drop)}
    # one quick compilation, no background optimisation that could still be writing at exit
    env["JACC_COMPILE"] = "fast"
    env.update(env_update)
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(lattice or "")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    result = json.loads(line[len("RESULT "):])
    result["stderr"] = proc.stderr
    return result


def entries(folder: pathlib.Path) -> list[pathlib.Path]:
    return sorted(folder.rglob("*-cache")) if folder.exists() else []


@pytest.fixture(scope="module")
def twice(tmp_path_factory):
    """The FODO ring's Twiss in two fresh processes sharing one cache folder."""
    tmp = tmp_path_factory.mktemp("cache")
    lattice = tmp / "fodo4.madx"
    lattice.write_text(FODO4)
    folder = tmp / "xla"
    first = run_child("twiss", {"JACC_COMPILATION_CACHE": str(folder)}, lattice)
    after_first = entries(folder)
    second = run_child("twiss", {"JACC_COMPILATION_CACHE": str(folder)}, lattice)
    return folder, first, after_first, second


def test_first_process_fills_the_folder(twice):
    folder, first, after_first, _ = twice
    assert first["dir"] == str(folder)
    assert first["misses"] > 0
    # every program compiled is written (threshold 0 s): the Twiss program and the small ones
    assert len(after_first) == first["misses"]


def test_second_process_loads_every_program_from_the_folder(twice):
    _, first, after_first, second = twice
    # counts of JAX's own monitoring events: exact, unlike a timing comparison
    assert second["misses"] == 0, second
    assert second["hits"] >= first["misses"]


def test_off_leaves_nothing(tmp_path):
    home = tmp_path / "xdg"
    out = run_child("jit", {"JACC_COMPILATION_CACHE": "off", "XDG_CACHE_HOME": str(home)})
    assert out["dir"] is None
    assert out["hits"] == 0 and out["misses"] == 0
    assert not home.exists()


def test_default_folder_is_under_xdg_cache_home(tmp_path):
    out = run_child("jit", {"XDG_CACHE_HOME": str(tmp_path)})
    assert out["dir"] == str(tmp_path / "jacc" / "xla")
    assert entries(tmp_path / "jacc" / "xla")


def test_folder_configured_through_jax_is_kept(tmp_path):
    mine, jax_dir = tmp_path / "mine", tmp_path / "jax"
    out = run_child("jit", {"JACC_COMPILATION_CACHE": str(mine), "JAX_COMPILATION_CACHE_DIR": str(jax_dir)})
    assert out["dir"] == str(jax_dir)
    assert not mine.exists()


def test_unusable_folder_warns_and_import_goes_on(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = run_child("jit", {"JACC_COMPILATION_CACHE": str(blocker / "xla")})
    assert out["dir"] is None
    assert "compilation cache disabled" in out["stderr"]


@pytest.mark.parametrize("value, expected", [
    ("", "default"), ("  ", "default"), ("off", None), ("OFF", None), ("0", None), ("false", None),
    ("~/somewhere", pathlib.Path("~/somewhere").expanduser()),
])
def test_requested_dir(value, expected):
    got = _cache.requested_dir({"JACC_COMPILATION_CACHE": value})
    assert got == (_cache.default_dir() if expected == "default" else expected)
