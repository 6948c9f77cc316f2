"""Pipelines of the twin: the exporters and stages against JACC, the surrogate against the
section it stands for, and what a pipeline costs over the compiled function.

    python benchmarks/pipeline.py --json results/pipeline.json [--lattice LINE.madx] [--particles N]

The line is the IOTA proton injector stand-in (examples/ipi_standin.madx) and the pipeline
examples/ipi_pipeline.json (ImpactX to bpm1, JACC to bpm3, a surrogate of c2 to bpm4), with
``--particles`` particles from its source. Figures:

- ``xsuite_export_tune_err``: |tune of the exported xtrack line - tune of `jacc.twiss`|,
  largest of the two planes, on the embedded IOTA ring (4D, electrons).
- ``impactx_vs_jacc_max_dx``: largest |x_ImpactX - x_JACC| [m] after the first section, the
  pipeline's models at high fidelity (ImpactX's exact elements, JACC's default models);
  ``..._linear``: both linear (low fidelity).
- ``surrogate_rel_err``: largest |surrogate - JACC tracking| at bpm4 over the pipeline's beam
  for kq6 from -3 % to +3 %, in units of the rms size of the plane (centroids and sizes).
- ``surrogate_speedup_vs_jacc``: JACC tracking of the section (every particle of 64 beams,
  vmapped) / the surrogate on the same 64 beams' moments (vmapped), medians of alternating
  timings; ``..._one_beam``: one call of each model on the pipeline's beam, as the
  pipeline makes it (dispatch included).
- ``pipeline_overhead_ratio``: a pipeline of one JACC model of the whole line / the jitted
  `TrackingEngine.make_tracking_func` called directly on the same particles.
- ``xsuite_vjp_rel_err``: gradient of a loss (squared rms sizes after the dogleg section)
  w.r.t. kq6 and the source's emittance through the Xsuite model's finite-difference VJP,
  relative to reverse mode through the JACC model.

A peer that fails (xtrack, ImpactX) is recorded as a string and the run goes on. JAX runs on
one CPU thread, with the persistent compilation cache off.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from common import REPO, machine, paired_times, peer_call, print_table, single_thread_jax, write_json

single_thread_jax()
os.environ.setdefault("JACC_COMPILATION_CACHE", "off")
os.environ.setdefault("JACC_COMPILE", "fast")  # the optics here are for tunes, not timings

EXAMPLE = REPO / "examples" / "ipi_pipeline.json"


def example_spec(lattice: str, n: int) -> dict:
    """The example pipeline's JSON with ``lattice`` and ``n`` particles."""
    spec = json.loads(EXAMPLE.read_text())
    for m in spec["models"]:
        if m.get("config_lattice", {}).get("file"):
            m["config_lattice"]["file"] = str(lattice)
        if "particle_shape" in m.get("config_runtime", {}):
            m["config_runtime"]["particle_shape"] = [n, 6]
    return spec


def pipeline(spec: dict, fidelity: str = "high"):
    from jacc_twin import Pipeline

    return Pipeline.model_validate({**spec, "shared": {"fidelity": fidelity}},
                                   context={"base_dir": EXAMPLE.parent})


def models(spec: dict, *names: str) -> list[dict]:
    by_name = {m["name"]: m for m in spec["models"]}
    return [by_name[n] for n in names]


# ---------------------------------------------------------------- sections

def export_tunes(results: dict) -> None:
    import jacc
    from jacc.bridges import XsuiteExporter

    lat, rp = jacc.lattices.iota()
    tw = jacc.twiss(lat, rp, options=jacc.TwissOptions(chrom=False))
    line = XsuiteExporter().write_lattice(lat, rp)
    xtw = peer_call(results, "xtrack_status", line.twiss4d)
    if xtw is not None:
        results["xsuite_export_tune_err"] = max(abs(float(xtw.qx) - float(tw.qx)), abs(float(xtw.qy) - float(tw.qy)))


def impactx_vs_jacc(spec: dict, results: dict) -> None:
    src, triplet = models(spec, "source", "triplet")
    jacc_triplet = {"type": "jacc_tracking", "name": "triplet", "config_lattice": triplet["config_lattice"]}
    for fidelity, key in (("high", "impactx_vs_jacc_max_dx"), ("low", "impactx_vs_jacc_max_dx_linear")):
        a = pipeline({"models": [src, jacc_triplet]}, fidelity).run()
        code = {**triplet, "fallback": None}  # no xtrack in its place here: a missing ImpactX is reported
        b = peer_call(results, "impactx_status", lambda: pipeline({"models": [src, code]}, fidelity).run())
        if b is not None:
            import numpy as np

            results[key] = float(np.nanmax(np.abs(np.asarray(b["particles"])[:, 0] - np.asarray(a["particles"])[:, 0])))


def surrogate_section(spec: dict, results: dict) -> None:
    """The surrogate against JACC tracking of the diagnostic section it stands for."""
    import numpy as np

    from jacc_twin import JaccTrackingModel

    pipe = pipeline(spec).setup()
    sur = pipe.model("diagnostics")
    meta = sur.header().get("metadata", {}).get("section", {"start": "c2", "end": "bpm4"})
    lattice = models(spec, "dogleg")[0]["config_lattice"]["file"]
    section = JaccTrackingModel.model_validate(
        {"name": "diagnostic_section", "config_lattice": {"file": lattice, **meta},
         "outputs": {"centroid": {"type": "vector"}, "beam_sizes": {"type": "vector"}}}).setup()
    kq6 = pipe.model("dogleg")._built[1].defaults["kq6"]
    errs = []
    for f in np.linspace(0.97, 1.03, 7):
        out = pipe.run({"kq6": float(kq6) * f})
        ref = section.run({"particles": out["dogleg.particles"]})
        c, s = np.asarray(ref["centroid"]), np.asarray(ref["beam_sizes"])
        truth = np.array([c[0], c[2], s[0], s[2]])
        pred = np.array([float(out[k]) for k in ("x_bpm4", "y_bpm4", "sigma_x_bpm4", "sigma_y_bpm4")])
        errs.append(np.abs(pred - truth) / np.array([s[0], s[2], s[0], s[2]]))
    errs = np.array(errs)
    results["surrogate_rel_err"] = float(errs.max())
    results["surrogate_rel_err_median"] = float(np.median(errs))
    beam = out["dogleg.particles"]
    moments = {"beam_moments": out["dogleg.beam_moments"]}
    t_jacc, t_sur, ratio = paired_times(lambda: section.run({"particles": beam}), lambda: sur.run(moments),
                                        rounds=5, min_time=0.2)
    results.update(section_jacc_one_beam_s=t_jacc, section_surrogate_one_beam_s=t_sur,
                   surrogate_speedup_vs_jacc_one_beam=1.0 / ratio)
    surrogate_batch(section, sur, np.asarray(beam), results)


def surrogate_batch(section, sur, beam, results: dict, n_beams: int = 64) -> None:
    """JACC tracking of ``n_beams`` beams through the section against the surrogate on their
    moments, both vmapped and jitted (the batch of settings a scan or an optimiser asks for)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jacc_twin.models._observables import beam_moments, particle_moments

    scale = np.exp(np.random.default_rng(3).uniform(-0.1, 0.1, (n_beams, 1, 6)))
    beams = jnp.asarray(beam[None] * scale)
    alive = jnp.ones(beam.shape[0], bool)
    moments = jax.jit(jax.vmap(lambda x: beam_moments(*particle_moments(x, alive)[:2])))(beams)
    keep = ("centroid", "beam_sizes", "x_bpm4", "y_bpm4", "sigma_x_bpm4", "sigma_y_bpm4")

    def batched(model, key):
        return jax.jit(jax.vmap(lambda v: {k: o for k, o in model.run({key: v}).items() if k in keep}))

    jacc_b, sur_b = batched(section, "particles"), batched(sur, "beam_moments")
    run_jacc = lambda: jax.block_until_ready(jacc_b(beams))  # noqa: E731
    run_sur = lambda: jax.block_until_ready(sur_b(moments))  # noqa: E731
    run_jacc(), run_sur()
    t_jacc, t_sur, ratio = paired_times(run_jacc, run_sur, rounds=5, min_time=0.2)
    results.update(surrogate_batch_beams=n_beams, section_jacc_batch_s=t_jacc, section_surrogate_batch_s=t_sur,
                   surrogate_speedup_vs_jacc=1.0 / ratio)


def overhead(spec: dict, results: dict, n: int) -> None:
    """A pipeline of one JACC model of the whole line against the compiled function."""
    import jax
    import numpy as np

    import jacc
    from jacc_twin import Pipeline

    lattice = models(spec, "dogleg")[0]["config_lattice"]["file"]
    lat = jacc.Lattice.from_madx(lattice)
    rp = jacc.lattices.reference_from_beam(lat)
    x = np.random.default_rng(0).normal(size=(n, 6)) * [1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-4]
    engine = jacc.TrackingEngine(lat, rp)
    spec_, _, dynamic = engine.make_model()
    f = jax.jit(engine.make_tracking_func(spec_, record=None))
    pipe = Pipeline.model_validate({"models": [{"type": "jacc_tracking", "name": "line",
                                                "config_lattice": {"file": lattice}}]}).setup()
    direct = lambda: f(dynamic, x).x.block_until_ready()  # noqa: E731
    piped = lambda: pipe.run({"particles": x})  # noqa: E731
    direct(), piped()
    t_direct, t_pipe, ratio = paired_times(direct, piped, rounds=7, min_time=0.2)
    results.update(direct_s=t_direct, pipeline_s=t_pipe, pipeline_overhead_ratio=ratio)


def xsuite_vjp(spec: dict, results: dict) -> None:
    """Gradients through the Xsuite model's finite-difference VJP and through JACC."""
    import numpy as np

    src = {**models(spec, "source")[0], "inputs": {"emitx_norm": {"type": "scalar"}}}
    dogleg = models(spec, "dogleg")[0]
    loss = {"size": {"terms": [{"output": "beam_sizes", "index": [0, 2], "weight": 1e6}]}}
    out = {"particles": {"type": "coordinates"}, "beam_sizes": {"type": "vector"}}
    grads = {}
    for kind in ("jacc_tracking", "xsuite"):
        m = {"type": kind, "name": "dogleg", "config_lattice": dogleg["config_lattice"], "outputs": out}
        run = lambda: pipeline({"models": [src, m], "losses": loss}).run(grad_of="size", wrt=["kq6", "emitx_norm"])  # noqa: E731
        t0 = time.perf_counter()
        res = run() if kind == "jacc_tracking" else peer_call(results, "xtrack_status", run)
        results[f"grad_first_call_s_{kind}"] = time.perf_counter() - t0
        if res is not None:
            grads[kind] = np.array([float(res["dsize/dkq6"]), float(res["dsize/demitx_norm"])])
    if "xsuite" in grads:
        a, b = grads["jacc_tracking"], grads["xsuite"]
        results["xsuite_vjp_rel_err"] = float(np.max(np.abs(b - a) / np.abs(a)))
        results["grad_jacc"], results["grad_xsuite"] = a.tolist(), b.tolist()


def example_timings(spec: dict, results: dict) -> None:
    """The example pipeline as the command runs it: first call (compiles), then warm."""
    pipe = pipeline(spec)
    t0 = time.perf_counter()
    pipe.run()
    results["example_first_run_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = pipe.run()
    results["example_run_s"] = time.perf_counter() - t0
    results["example_model_s"] = {m.name: float(out[f"{m.name}.walltime"]) for m in pipe.models}
    t0 = time.perf_counter()
    g = pipe.run(grad_of="spot_size", wrt=["kq1", "kq2", "kq3", "kq6"])
    results["example_grad_first_s"] = time.perf_counter() - t0
    results["example_spot_size"] = float(g["spot_size"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lattice", default=str(REPO / "examples" / "ipi_standin.madx"),
                    help="the proton line (MAD-X; default: the IOTA proton injector stand-in)")
    ap.add_argument("--particles", type=int, default=2000, help="particles of the pipeline's beam")
    ap.add_argument("--json", default=None, help="write results to this JSON file")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    results = {"lattice": args.lattice, "particles": args.particles, "machine": machine()}
    spec = example_spec(args.lattice, args.particles)
    for name, fn in (("export", lambda: export_tunes(results)),
                     ("impactx", lambda: impactx_vs_jacc(spec, results)),
                     ("surrogate", lambda: surrogate_section(spec, results)),
                     ("overhead", lambda: overhead(spec, results, args.particles)),
                     ("xsuite_vjp", lambda: xsuite_vjp(spec, results)),
                     ("example", lambda: example_timings(spec, results))):
        peer_call(results, f"{name}_section_status", fn)
    results["wall_s"] = time.perf_counter() - t_start
    rows = [[k, results.get(k, "-"), note] for k, note in (
        ("xsuite_export_tune_err", "IOTA ring, 4D, exported line vs jacc.twiss"),
        ("impactx_vs_jacc_max_dx", "m, after the triplet: ImpactX exact vs JACC default"),
        ("impactx_vs_jacc_max_dx_linear", "m, both linear"),
        ("surrogate_rel_err", "max over kq6 +-3 %, of the rms size"),
        ("surrogate_rel_err_median", "median"),
        ("surrogate_speedup_vs_jacc", f"JACC section / surrogate, 64 beams of {args.particles} particles"),
        ("surrogate_speedup_vs_jacc_one_beam", "same, one model call each"),
        ("pipeline_overhead_ratio", f"pipeline / compiled function, {args.particles} particles"),
        ("xsuite_vjp_rel_err", "FD VJP through xtrack vs JACC reverse mode"),
        ("example_run_s", "the example pipeline, warm"),
        ("example_first_run_s", "same, first call (compiles)"),
        ("example_grad_first_s", "with gradients w.r.t. kq1-kq3, kq6, first call"),
    )]
    print_table("Pipelines (benchmarks/pipeline.py)", ["figure", "value", "what"], rows)
    print(f"wall time {results['wall_s']:.0f} s")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
