"""The twin's main job (``make run``): load the embedded IOTA ring and report on it.

Prints the lattice summary (length, element counts, BPM and corrector positions) and, where
the optics layer is available, tunes, chromaticities and beta extremes, and writes the
optics plot.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np

import jacc

_CORRECTORS = ("HKicker", "VKicker", "HVCorrector")


def summarise(lat: "jacc.Lattice", rp) -> str:
    """A human-readable summary of a lattice and its reference particle."""
    lines = [f"Lattice '{lat.name}': {len(lat)} placements of {len(lat.definitions)} definitions, "
             f"length {lat.length:.8f} m",
             f"Reference particle: {rp.species}, E_kin = {rp.kin_energy0 / 1e6:.6g} MeV, "
             f"p0c = {rp.p0c / 1e6:.6g} MeV, beta0 = {rp.beta0:.10f}"]
    counts = lat.count_by_type()
    lines.append("Elements by type: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    els = lat.elements
    bpms = [p for p in els if p.element_name == "Monitor"]
    cors = [p for p in els if p.element_name in _CORRECTORS]
    lines.append(f"{len(bpms)} BPMs at s [m]:")
    lines += _columns([f"{p.key:>12s} {p.s_mid:9.4f}" for p in bpms])
    lines.append(f"{len(cors)} correctors at s [m]:")
    lines += _columns([f"{p.key:>12s} {p.s_mid:9.4f}" for p in cors])
    if lat.knobs:
        lines.append(f"{len(lat.knobs)} knobs: " + ", ".join(sorted(lat.knobs)[:12])
                     + (" ..." if len(lat.knobs) > 12 else ""))
    return "\n".join(lines)


def _columns(cells, ncol: int = 4):
    return ["  " + "  ".join(cells[i:i + ncol]) for i in range(0, len(cells), ncol)]


def optics_report(lat, rp, out_dir: pathlib.Path) -> str:
    """Tunes, chromaticities and beta extremes of a ring, and its optics plot."""
    if not hasattr(jacc, "twiss"):
        return "Optics: not available yet."
    t0 = time.perf_counter()
    tw = jacc.twiss(lat, rp, method="4d")
    t1 = time.perf_counter()
    tw = jacc.twiss(lat, rp, method="4d")
    t2 = time.perf_counter()
    lines = [f"Optics (4D, preset Xsuite): qx = {float(tw.qx):.8f}, qy = {float(tw.qy):.8f}, "
             f"dqx = {float(tw.dqx):.5f}, dqy = {float(tw.dqy):.5f}",
             f"  max betx = {float(np.max(tw.betx)):.5f} m, max bety = {float(np.max(tw.bety)):.5f} m, "
             f"max |dx| = {float(np.max(np.abs(tw.dx))):.5f} m",
             f"  twiss: first call {t1 - t0:.2f} s (compile), then {1e3 * (t2 - t1):.2f} ms"]
    if hasattr(tw, "plot"):
        out_dir.mkdir(parents=True, exist_ok=True)
        fig = tw.plot(lat, title=f"IOTA, {rp.species}s: " + f"Qx = {float(tw.qx):.4f}, Qy = {float(tw.qy):.4f}")
        path = out_dir / "iota_optics.png"
        fig.savefig(path, dpi=120)
        lines.append(f"  optics plot written to {path}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run the JACC-Twin main job on the embedded IOTA ring.")
    parser.add_argument("--species", default="electron", choices=["electron", "proton"])
    parser.add_argument("--out", default="results", help="folder for plots and results")
    args = parser.parse_args(argv)
    lat, rp = jacc.lattices.iota(species=args.species)
    print(summarise(lat, rp))
    print(optics_report(lat, rp, pathlib.Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
