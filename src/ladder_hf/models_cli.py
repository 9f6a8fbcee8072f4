"""``ladder-hf model``: convert and cache the embedded model, or save a tiny test model."""

from __future__ import annotations

import argparse
import time

from ladder_hf.models import DEFAULT_MODEL_NAME, default_model_path, save_tiny_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ladder-hf model", description=__doc__)
    parser.add_argument(
        "--tiny", metavar="DIR", help="instead, write a tiny random model with the real tokenizer to DIR"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.tiny:
        print(save_tiny_model(args.tiny))
    else:
        path = default_model_path()
        print(f"{DEFAULT_MODEL_NAME}: {path}  ({time.perf_counter() - start:.1f}s)")
    return 0
