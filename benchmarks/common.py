"""Shared helpers of the benchmark scripts: timing, lattice loading, table printing, JSON."""

from __future__ import annotations

import json
import os
import pathlib
import platform
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_FODO = REPO / "jacc" / "lattices" / "data" / "fodo40.madx"


def single_thread_jax() -> None:
    """Restrict XLA's CPU backend to one thread (must run before jax is imported).

    Eigen's thread pool is the only one XLA's CPU backend uses for these programs (their
    process time equals their wall time with this flag). Every token of ``XLA_FLAGS`` must
    be a ``--flag``: the parser ignores whatever follows one that is not.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def cold_compilation() -> None:
    """Leave JACC's persistent compilation cache off (must run before jacc is imported).

    Benchmarks report compile times and first calls: they measure compilation, not a disk
    cache filled by an earlier run. A ``JACC_COMPILATION_CACHE`` set by the caller is kept.
    """
    os.environ.setdefault("JACC_COMPILATION_CACHE", "off")


def peer_call(results: dict, key: str, fn, *args, failure: str = "failed", **kwargs):
    """``fn(*args, **kwargs)`` for a peer code (xtrack, MAD-X, Cheetah) that may raise.

    A peer's failure is one of the benchmark's results, not the end of it: an exception is
    recorded as ``"<failure>: <type>: <message>"`` in ``results[key]``, printed, and None is
    returned; the caller goes on without that peer. A success records ``"ok"`` unless an
    earlier call already recorded a failure under ``key``.
    """
    try:
        out = fn(*args, **kwargs)
    except Exception as err:  # noqa: BLE001 - whatever the peer raises is reported
        msg = f"{failure}: {type(err).__name__}: {err}".strip()
        results[key] = msg
        print(f"{key}: {msg.splitlines()[0][:300]}")
        return None
    results.setdefault(key, "ok")
    return out


def best_time(fn, repeat: int = 5, min_time: float = 0.2) -> float:
    """Best wall time of ``fn()`` [s] over ``repeat`` rounds (each at least ``min_time``)."""
    best = float("inf")
    for _ in range(repeat):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        best = min(best, dt / n)
    return best


def paired_times(fa, fb, rounds: int = 5, min_time: float = 0.2):
    """Times of ``fa()`` and ``fb()`` [s], measured in alternation for ``rounds`` rounds.

    Returns ``(best_a, best_b, ratio)``, ``ratio`` the median over the rounds of
    ``time_b / time_a``: each round's pair shares the machine's load of the moment, so the
    ratio is steadier on a noisy machine than the ratio of the best times.
    """
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(best_time(fa, repeat=1, min_time=min_time))
        tb.append(best_time(fb, repeat=1, min_time=min_time))
    ratios = sorted(b / a for a, b in zip(ta, tb))
    return min(ta), min(tb), ratios[len(ratios) // 2]


def madx_rf_off(madx, seq) -> None:
    """Set every RF cavity's voltage to zero in a cpymad instance (4D optics on all sides)."""
    for name, el in madx.elements.items():
        if el.base_type.name == "rfcavity":
            madx.input(f"{name}, volt = 0;")
    madx.use(sequence=seq)


def load_madx(path):
    """``(lat, rp, madx, sequence_name)``: JACC's import and a cpymad instance of the same file."""
    import jacc
    from cpymad.madx import Madx

    lat = jacc.Lattice.from_madx(path)
    rp = jacc.lattices.reference_from_beam(lat)
    madx = Madx(stdout=False)
    madx.call(str(path))
    seq = lat.name
    madx.use(sequence=seq)
    return lat, rp, madx, seq


def xtrack_line(madx, seq, rp, *, full_edges: bool = False):
    """An ``xt.Line`` of the same sequence with the same reference particle (xtrack defaults)."""
    import xtrack as xt

    line = xt.Line.from_madx_sequence(madx.sequence[seq], deferred_expressions=True, install_apertures=True)
    line.particle_ref = xt.Particles(mass0=rp.mass0, q0=rp.charge, p0c=rp.p0c)
    if full_edges:
        line.configure_bend_model(edge="full")
        for name in line.element_names:
            el = line[name]
            if type(el).__name__ == "DipoleEdge":
                el.model = "full"
    return line


def machine() -> dict:
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "time": time.strftime("%Y-%m-%d %H:%M:%S")}


def print_table(title: str, header: list[str], rows: list[list]) -> None:
    """Print a plain-text table (also valid Markdown)."""
    cells = [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if (abs(v) >= 1e4 or abs(v) < 1e-2) and v != 0 else f"{v:.3f}"
    return str(v)


def write_json(path, data: dict) -> None:
    if path:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(path).write_text(json.dumps(data, indent=1, default=float))
        print(f"\nresults written to {path}")
