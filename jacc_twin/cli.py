"""The ``jacc-twin`` command line.

    jacc-twin pipeline FILE.json --json OUT [--grad LOSS [--wrt NAME ...]] [--set NAME=VALUE ...]
    jacc-twin run | serve | pvs | devices   (`jacc_twin.cli_run`, `jacc_twin.cli_control`)

Sub-commands are argparse sub-parsers: each is a function ``add_<name>(subparsers)`` that
registers its parser and sets ``func``, the function run with the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

__all__ = ["main", "build_parser"]


def add_pipeline(sub) -> None:
    p = sub.add_parser("pipeline", help="run a pipeline JSON file and write its outputs",
                       description="Run the simulation pipeline in FILE (a jacc_twin.Pipeline as JSON; "
                                   "relative paths inside resolve against its folder) and write its "
                                   "outputs, and gradients with --grad, as JSON.")
    p.add_argument("file", help="pipeline JSON file")
    p.add_argument("--json", required=True, metavar="OUT", help="output JSON file")
    p.add_argument("--grad", metavar="LOSS", help="also the gradients of LOSS (a loss or scalar output)")
    p.add_argument("--wrt", nargs="+", metavar="NAME",
                   help="pipeline inputs to differentiate by (default: every scalar input)")
    p.add_argument("--set", nargs="+", default=[], metavar="NAME=VALUE",
                   help="values of scalar pipeline inputs, e.g. kq6=19.5")
    p.add_argument("--max-elements", type=int, default=1000,
                   help="arrays with more elements are written as a summary (shape, min, max, "
                        "mean); 0: write everything")
    p.set_defaults(func=run_pipeline)


def _parse_set(items) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"jacc-twin pipeline: --set takes NAME=VALUE, got {item!r}")
        try:
            out[name] = float(value)
        except ValueError:
            raise SystemExit(f"jacc-twin pipeline: --set {name}: {value!r} is not a number") from None
    return out


def run_pipeline(args) -> int:
    """``jacc-twin pipeline``: run the file's pipeline, write the outputs."""
    from jacc_twin import Pipeline
    from jacc_twin._values import to_jsonable

    t0 = time.perf_counter()
    pipe = Pipeline.from_file(args.file)
    wrt = None
    if args.grad:
        wrt = args.wrt or [k for k, srcs in pipe._external.items() if srcs[0].port.type == "scalar"]
    inputs = _parse_set(args.set)
    out = pipe.run(inputs, grad_of=args.grad, wrt=wrt)
    grads = {k: out.pop(k) for k in [f"d{args.grad}/d{w}" for w in wrt or []]}
    limit = None if args.max_elements == 0 else args.max_elements
    report = {"pipeline": pipe.name, "file": str(pathlib.Path(args.file).resolve()),
              "fidelity": pipe.shared.fidelity, "inputs": inputs, "grad_of": args.grad, "wrt": wrt,
              "outputs": to_jsonable(out, limit), "gradients": to_jsonable(grads, limit),
              "command_s": time.perf_counter() - t0}
    path = pathlib.Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
    _print_summary(pipe, out, grads)
    print(f"outputs written to {path}")
    return 0


def _print_summary(pipe, out: dict, grads: dict) -> None:
    import numpy as np

    print(f"pipeline '{pipe.name}': {len(pipe.models)} models, fidelity {pipe.shared.fidelity}")
    for m in pipe.models:
        print(f"  {m.name:>16s} ({m.type}): {1e3 * float(out[f'{m.name}.walltime']):9.2f} ms")
    for k in list(pipe.losses) + sorted(grads):
        v = out.get(k, grads.get(k))
        print(f"  {k} = {float(np.asarray(v)):.10g}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jacc-twin", description="JACC-Twin: the digital twin's tools")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    add_pipeline(sub)
    from .cli_run import add_run

    add_run(sub)
    from .cli_control import add_devices, add_pvs, add_serve

    add_serve(sub)
    add_pvs(sub)
    add_devices(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, FileNotFoundError, NotImplementedError) as err:
        print(f"jacc-twin {sys.argv[1] if len(sys.argv) > 1 else ''}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
