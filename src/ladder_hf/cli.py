"""``ladder-hf``: the project's one command line.

Each subcommand lives beside the code it drives and owns its own argparse parser; this module
only dispatches, so ``ladder-hf --help`` stays fast (nothing heavy is imported until needed).

    ladder-hf model                      # convert/cache the embedded model, print its path
    ladder-hf variants generate ...      # build variant trees      (ladder_hf.variants)
    ladder-hf variants push DIR ...      # publish a versioned Hub dataset
    ladder-hf evaluate ...               # Integration Bee evaluation (ladder_hf.evaluation)
    ladder-hf register-metric            # make evaluate.load("integration_bee") work by name (ladder_hf.metrics)
    ladder-hf train --config ...         # LADDER GRPO training      (ladder_hf.grpo)
    ladder-hf ttrl --config ...          # test-time RL              (ladder_hf.ttrl)
    ladder-hf demo                       # the whole pipeline, end to end (ladder_hf.demo)
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, help). Each module exposes ``main(argv: list[str] | None) -> int | None``.
COMMANDS: dict[str, tuple[str, str]] = {
    "model": ("ladder_hf.models_cli", "convert and cache the embedded default model; print its path"),
    "variants": ("ladder_hf.variants.cli", "generate variant trees / push them as a versioned Hub dataset"),
    "evaluate": ("ladder_hf.evaluation", "evaluate a model on Integration Bee problems"),
    "register-metric": ("ladder_hf.metrics", 'make evaluate.load("integration_bee") find the metric by name'),
    "train": ("ladder_hf.grpo", "LADDER training with TRL's GRPOTrainer (same as recipes/grpo.py)"),
    "ttrl": ("ladder_hf.ttrl", "test-time reinforcement learning (same as recipes/ttrl.py)"),
    "demo": ("ladder_hf.demo", "run LADDER end to end on the embedded model and write a report"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="ladder-hf",
        description="LADDER and TTRL for the Hugging Face stack.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items()),
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="command", help="one of: " + ", ".join(COMMANDS))
    parser.add_argument("--version", action="version", version=_version())
    if not argv or argv[0] in ("-h", "--help") or argv[0] == "--version":
        parser.parse_args(argv or ["--help"])
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        parser.error(f"unknown command {command!r}; choose from {', '.join(COMMANDS)}")
    module = importlib.import_module(COMMANDS[command][0])
    result = module.main(rest)
    return int(result or 0)


def _version() -> str:
    from ladder_hf import __version__

    return f"ladder-hf {__version__}"


if __name__ == "__main__":
    sys.exit(main())
