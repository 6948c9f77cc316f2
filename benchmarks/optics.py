"""Periodic Twiss after compile: JACC against xtrack ``twiss4d()`` and MAD-X TWISS (cpymad).

    python benchmarks/optics.py --lattice ring.madx --json results/optics.json [--no-gradient]

Also times the gradient of (qx, qy, dqx, dqy) with respect to every quadrupole and
sextupole strength in one call, and its ratio to one Twiss evaluation. JACC uses the
``Xsuite()`` preset, xtrack its defaults; the tunes of all three codes are printed beside
the timings.
"""

from __future__ import annotations

import argparse
import sys
import time

from common import (DEFAULT_FODO, best_time, cold_compilation, load_madx, machine, madx_rf_off, peer_call,
                    print_table, single_thread_jax, write_json, xtrack_line)

single_thread_jax()
cold_compilation()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import jacc  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lattice", default=str(DEFAULT_FODO), help="MAD-X file (default: the FODO ring)")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    ap.add_argument("--no-gradient", action="store_true",
                    help="skip the Jacobian section (its programs compile for minutes)")
    args = ap.parse_args(argv)
    lat, rp, madx, seq = load_madx(args.lattice)
    madx_rf_off(madx, seq)  # 4D optics on all sides

    engine = jacc.TrackingEngine(lat, rp, specialise=False)
    spec, _, dyn = engine.make_model()
    g = jax.jit(engine.make_twiss_func(spec))
    t0 = time.perf_counter()
    tw = jax.block_until_ready(g(dyn))
    compile_s = time.perf_counter() - t0
    t_jacc = best_time(lambda: jax.block_until_ready(g(dyn)))

    results = {"lattice": args.lattice, "n_elements": len(lat), "machine": machine(),
               "jacc_twiss_s": t_jacc, "compile_time_s": compile_s,
               "tunes": {"jacc": [float(tw.qx), float(tw.qy)]}}
    rows = [["JACC (jit, after compile)", t_jacc * 1e3, 1.0, float(tw.qx), float(tw.qy)]]
    # a peer that raises (unstable optics, a parser limit) is recorded and the run goes on
    xt_out = peer_call(results, "xtrack_status", xtrack_twiss, madx, seq, rp)
    if xt_out is not None:
        t_xt, q_xt = xt_out
        results.update({"xtrack_twiss4d_s": t_xt, "ratio_vs_xtrack": t_xt / t_jacc})
        results["tunes"]["xtrack"] = q_xt
        rows.append(["xtrack twiss4d()", t_xt * 1e3, t_xt / t_jacc, *q_xt])
    mad_out = peer_call(results, "madx_status", madx_twiss, madx)
    if mad_out is not None:
        t_mad, q_mad = mad_out
        results.update({"madx_twiss_s": t_mad, "ratio_vs_madx": t_mad / t_jacc})
        results["tunes"]["madx"] = q_mad
        rows.append(["MAD-X TWISS (cpymad)", t_mad * 1e3, t_mad / t_jacc, *q_mad])
    print_table(f"Periodic Twiss of {seq} ({len(lat)} elements), JACC compile {compile_s:.1f} s",
                ["code", "time [ms]", "time / JACC", "qx", "qy"], rows)
    if not args.no_gradient:
        results.update(jacobian_section(lat, rp))
    write_json(args.json, results)
    return 0


def xtrack_twiss(madx, seq, rp):
    """``(time [s], [qx, qy])`` of xtrack's ``twiss4d()`` after its kernels are built."""
    line = xtrack_line(madx, seq, rp)
    line.build_tracker()
    tx = line.twiss4d()
    return best_time(lambda: line.twiss4d(), repeat=3), [float(tx.qx), float(tx.qy)]


def madx_twiss(madx):
    """``(time [s], [q1, q2])`` of MAD-X TWISS (cpymad) on the sequence in use."""
    madx.twiss()
    q = [float(madx.table.summ.q1[0]), float(madx.table.summ.q2[0])]
    return best_time(lambda: madx.twiss(), repeat=3), q


def jacobian_section(lat, rp) -> dict:
    """Jacobian of (qx, qy, dqx, dqy) w.r.t. every quadrupole and sextupole strength, by
    forward and by reverse mode, against one Twiss evaluation."""
    glat = lat.copy()
    for d, e in glat.definitions.items():
        if e.element_name == "Quadrupole":
            e.diff_params = ["k1"]
        elif e.element_name == "Sextupole":
            e.diff_params = ["k2"]
    for k in glat.knobs:  # strengths driven by knobs are flagged through the knobs
        glat.knobs[k].diff = any(glat.definitions[d].element_name in ("Quadrupole", "Sextupole")
                                 for d, _ in glat.knob_dependents(k))
    gengine = jacc.TrackingEngine(glat, rp, specialise=False)
    gspec, _, gdyn = gengine.make_model()
    gg = gengine.make_twiss_func(gspec)
    def tunes_and_chromaticities(d):
        t = gg(d)
        return jnp.stack([t.qx, t.qy, t.dqx, t.dqy])

    summary = jax.jit(tunes_and_chromaticities)
    jax.block_until_ready(summary(gdyn))
    t_one = best_time(lambda: jax.block_until_ready(summary(gdyn)))
    # forward mode costs one pass per parameter, reverse mode one per output (4): both are
    # timed and the faster is the answer
    rows, modes = [], {}
    for mode, transform in (("jacfwd", jax.jacfwd), ("jacrev", jax.jacrev)):
        jac = jax.jit(transform(tunes_and_chromaticities))
        t0 = time.perf_counter()
        out = jax.block_until_ready(jac(gdyn))
        compile_grad = time.perf_counter() - t0
        t_grad = best_time(lambda: jax.block_until_ready(jac(gdyn)), repeat=3)
        modes[mode] = {"time_s": t_grad, "compile_s": compile_grad, "jacobian": out}
        rows.append([mode, t_one * 1e3, t_grad * 1e3, t_grad / t_one, compile_grad])
    jf, jr = modes["jacfwd"]["jacobian"], modes["jacrev"]["jacobian"]
    agree = max(float(jnp.max(jnp.abs(jf[k] - jr[k]))) for k in gdyn)
    # relative to the largest entry of each output's row (tunes and chromaticities differ
    # in scale by orders of magnitude)
    scale = jnp.max(jnp.abs(jnp.stack([jf[k] for k in gdyn])), axis=0)
    agree_rel = max(float(jnp.max(jnp.abs(jf[k] - jr[k]) / scale)) for k in gdyn)
    best = min(modes, key=lambda m: modes[m]["time_s"])
    t_grad = modes[best]["time_s"]
    print_table(f"Jacobian of (qx, qy, dqx, dqy) w.r.t. {len(gdyn)} quadrupole/sextupole parameters "
                f"(forward and reverse mode agree to {agree:.1e}, {agree_rel:.1e} of each output's largest)",
                ["mode", "twiss [ms]", "jacobian [ms]", "ratio", "compile [s]"], rows)
    return {
        "grad_n_params": len(gdyn), "grad_time_s": t_grad, "grad_over_twiss": t_grad / t_one,
        "grad_mode": best, "grad_modes": {m: {k: v for k, v in d.items() if k != "jacobian"}
                                          for m, d in modes.items()},
        "grad_fwd_rev_agreement": agree, "grad_fwd_rev_agreement_rel": agree_rel,
    }


if __name__ == "__main__":
    sys.exit(main())
