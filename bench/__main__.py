"""Run every benchmark and print one table (also written to bench/results/all.json).

    python -m bench                 every benchmark, full sizes
    python -m bench --quick         every benchmark at small sizes (make bench-quick; the tests run a subset)
    python -m bench NAME...         a subset: loop, transitions, imports, drift, monitor, transform, endpoint,
                                    validate, check, models

Each figure comes with a baseline measured in the same run (absolute times on shared
machines vary from run to run), its ratio, the goal and whether it is met. Benchmarks never
fail on speed; the command exits 1 only when a benchmark could not run (its line says why).
Progress goes to stderr.

Two baselines come from the ``bench`` extra (``pip install -e '.[bench]'``): the SageMaker
SDK import (imports) and evidently (drift); monitor runs evidently from its own venv
(``make bench-deps``). Without them those lines say so and keep their figures; quick mode
never runs evidently (it alone takes longer than the whole quick run).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from bench import check, common, drift, endpoint, imports, loop, models, monitor, transform, transitions, validate

BENCHMARKS: dict[str, Callable[..., list[common.Row]]] = {
    "loop": loop.run,
    "transitions": transitions.run,
    "imports": imports.run,
    "drift": drift.run,
    "monitor": monitor.run,
    "transform": transform.run,
    "endpoint": endpoint.run,
    "validate": validate.run,
    "check": check.run,
    "models": models.run,
}


# `transitions` measures on the stack that `loop` deployed (one process can boot it only once)
SHARES_STACK = ("loop", "transitions")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI (about a minute)")
    parser.add_argument("--json", metavar="PATH", help="write the rows here (default bench/results/all.json)")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"which benchmarks (default all): {', '.join(BENCHMARKS)}")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = [n for n in BENCHMARKS if n in args.names] if args.names else list(BENCHMARKS)
    rows: list[common.Row] = []
    seconds: dict[str, float] = {}
    failed = []
    started = time.perf_counter()
    try:
        for name in names:
            print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                rows += BENCHMARKS[name](quick=args.quick)
            except Exception as exc:  # one broken benchmark must not hide the others' figures
                failed.append(name)
                rows.append(common.error_row(name, exc))
                print(f"  {name} failed: {exc!r}", file=sys.stderr, flush=True)
            if not any(later in SHARES_STACK for later in names[names.index(name) + 1:]):
                loop.close()  # the next benchmarks boot their own local AWS
            seconds[name] = round(time.perf_counter() - began, 2)
            print(f"  {name}: {seconds[name]:.1f} s", file=sys.stderr, flush=True)
    finally:
        loop.close()
    common.print_table(rows)
    path = common.save(args.json or "all", rows, {"quick": args.quick, "benchmarks": names, "seconds": seconds,
                                     "total_seconds": round(time.perf_counter() - started, 2), "failed": failed})
    print(f"\nwritten to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
