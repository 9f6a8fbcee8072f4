"""``python -m ladder_hf.metrics``: register ladder_hf's metrics with evaluate and print the shim paths."""

from __future__ import annotations

import argparse

from ladder_hf.metrics import METRIC_NAMES, metric_path, register


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ladder_hf.metrics", description=__doc__)
    parser.add_argument("names", nargs="*", default=list(METRIC_NAMES), help="metrics to register (default: all)")
    parser.add_argument("--cache", default=None, help="evaluate's modules cache (default: $HF_MODULES_CACHE)")
    args = parser.parse_args(argv)
    for name in args.names:
        print(f"{name}: {register(name, cache=args.cache)}  (by path: {metric_path(name)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
