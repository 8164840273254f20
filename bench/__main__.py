"""Run every benchmark and print one table (also written to bench/results/all.json).

    python -m bench           full sizes
    python -m bench --quick   small sizes (what CI runs, so the benchmarks can't rot)

Benchmarks print figures; they never fail on speed. Each figure is a ratio against a
baseline measured in the same run, because absolute times on shared machines vary.
"""

from __future__ import annotations

import argparse
import sys

from bench import common, imports, pipeline, transform

BENCHMARKS = {"imports": imports.run, "pipeline": pipeline.run, "transform": transform.run}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="small sizes, for CI")
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], help="which benchmarks (default all)")
    args = parser.parse_args(argv)
    rows: list[common.Row] = []
    for name in args.names or BENCHMARKS:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += BENCHMARKS[name](quick=args.quick)
    common.print_table(rows)
    path = common.save("all", rows, {"quick": args.quick})
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
