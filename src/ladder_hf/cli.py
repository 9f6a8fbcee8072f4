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

Everyday mistakes (a missing file, an unknown problem set, a refused output folder) end with one line
on stderr and exit code 2; ``--debug`` (anywhere on the line) or ``LADDER_HF_DEBUG=1`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# What a user's typo raises (our own checks raise these with a message that names the thing and the fix);
# anything else is a bug and keeps its traceback.
EVERYDAY_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, PermissionError, ImportError)

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
    debug = "--debug" in rest or os.environ.get("LADDER_HF_DEBUG") == "1"
    rest = [a for a in rest if a != "--debug"]
    module = importlib.import_module(COMMANDS[command][0])
    try:
        result = module.main(rest)
    except EVERYDAY_ERRORS as err:
        if debug:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ladder-hf {command}: error: {message} (--debug shows the traceback)", file=sys.stderr)
        return 2
    return int(result or 0)


def _version() -> str:
    from ladder_hf import __version__

    return f"ladder-hf {__version__}"


if __name__ == "__main__":
    sys.exit(main())
