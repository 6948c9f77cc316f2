"""Orbit correction on the IOTA twin with Xopt, through the twin's LUME face.

Two horizontal correctors (HCA2R, HCE2R) are tuned by Xopt's Nelder-Mead generator to
minimise the rms horizontal orbit read at two BPMs (IBPMD2R, IBPMA3L) of a twin with seeded
faults (misaligned quadrupoles, BPM offsets and gains). Needs the ``xopt`` extra:
``pip install -e ".[twin,xopt]"``.

    python examples/xopt_iota_orbit.py [--errors-seed 3] [--steps 80]
"""

from __future__ import annotations

import argparse

import numpy as np

CORRECTORS = ["HCA2R:SETTING", "HCE2R:SETTING"]
BPMS = ["IBPMD2R:X", "IBPMA3L:X"]


def rms_orbit(model) -> float:
    """RMS of the chosen BPM readings [m]."""
    return float(np.sqrt(np.mean(np.square(list(model.get(BPMS).values())))))


def optimise(model, steps: int = 80, span: float = 3.0):
    """Run Xopt's Nelder-Mead on ``model`` (a `TwinLUMEModel`); returns ``(rms before, rms
    after, best settings)``; the model is left at the best settings."""
    from xopt import VOCS, Evaluator, Xopt
    from xopt.generators.sequential.neldermead import NelderMeadGenerator

    vocs = VOCS(variables={c: [-span, span] for c in CORRECTORS}, objectives={"rms": "MINIMIZE"})

    def evaluate(inputs: dict) -> dict:
        model.set({c: float(inputs[c]) for c in CORRECTORS})
        return {"rms": rms_orbit(model)}

    start = {c: float(v) for c, v in model.get(CORRECTORS).items()}
    before = rms_orbit(model)
    simplex = {c: [start[c], start[c] + 0.3 * (i == 0), start[c] + 0.3 * (i == 1)]
               for i, c in enumerate(CORRECTORS)}
    gen = NelderMeadGenerator(vocs=vocs, initial_point=start, initial_simplex=simplex)
    X = Xopt(evaluator=Evaluator(function=evaluate), generator=gen)
    for _ in range(steps):
        X.step()
    best = X.data.loc[X.data["rms"].idxmin()]
    model.set({c: float(best[c]) for c in CORRECTORS})
    return before, rms_orbit(model), {c: float(best[c]) for c in CORRECTORS}


def main(argv=None) -> int:
    from jacc_twin.iota import IotaTwin
    from jacc_twin.lume import TwinLUMEModel

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--errors-seed", type=int, default=3)
    p.add_argument("--steps", type=int, default=80)
    args = p.parse_args(argv)
    model = TwinLUMEModel(IotaTwin(errors_seed=args.errors_seed))
    before, after, best = optimise(model, steps=args.steps)
    print(f"rms orbit at {BPMS}: {before * 1e6:.1f} um -> {after * 1e6:.2f} um ({before / after:.0f}x)")
    print("settings:", {k: round(v, 5) for k, v in best.items()}, "A")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
