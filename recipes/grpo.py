"""LADDER GRPO training recipe (open-r1 style).

    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/grpo.py \
        --config recipes/configs/smollm2_cpu.yaml [--any_option value ...]

Options: `ladder_hf.configs.ScriptArguments` (data, prompt, rewards, curriculum, held-out eval),
TRL's `GRPOConfig` (trainer, vLLM, Hub) and `ModelConfig` (model, dtype, LoRA). See docs/training.md.
With no arguments on a machine without a GPU it runs the CPU recipe (`configs/smollm2_cpu.yaml`, the
embedded model) instead of failing on TRL's bf16 default.
"""

import sys
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent / "configs"
CPU_CONFIG = CONFIGS / "smollm2_cpu.yaml"
EPILOG = (
    f"Pick a recipe with --config: {', '.join(sorted(p.name for p in CONFIGS.glob('*.yaml')))} in {CONFIGS}. "
    "Any option of the file can be overridden on the command line."
)


def resolve_argv(argv: list[str], has_gpu: bool) -> list[str]:
    """The arguments to parse: as given, or the CPU recipe when none are given and there is no GPU."""
    if argv or has_gpu:
        return list(argv)
    print(f"recipes/grpo.py: no arguments and no GPU, running the CPU recipe {CPU_CONFIG.name} (see --help)")
    return ["--config", str(CPU_CONFIG)]


def run(args: list[str]) -> int:
    """Parse ``args`` (``--config`` plus overrides) and train; TRL and the Hub clients are imported here."""
    from trl import GRPOConfig, ModelConfig, TrlParser

    from ladder_hf.configs import ScriptArguments
    from ladder_hf.grpo import main

    parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig), epilog=EPILOG)
    return main(*parser.parse_args_and_config(args=args))


if __name__ == "__main__":
    import torch

    from ladder_hf.cli import run_guarded

    args = resolve_argv(sys.argv[1:], torch.cuda.is_available())
    # as `ladder-hf train`: one request finds a Hub endpoint that is down before huggingface_hub is imported
    # (a push is refused, anything else runs offline), and everyday errors are one line (LADDER_HF_DEBUG=1:
    # the traceback; --debug is TrainingArguments' own flag here)
    sys.exit(run_guarded("recipes/grpo.py", "train", args, lambda: run(args)))
