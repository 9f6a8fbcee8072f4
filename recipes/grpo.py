"""LADDER GRPO training recipe (open-r1 style).

    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/grpo.py \
        --config recipes/configs/smollm2_cpu.yaml [--any_option value ...]

Options: `ladder_hf.grpo.ScriptArguments` (data, prompt, rewards, curriculum, held-out eval),
TRL's `GRPOConfig` (trainer, vLLM, Hub) and `ModelConfig` (model, dtype, LoRA). See docs/training.md.
"""

import os
import sys

# Python puts this script's folder first on sys.path; a sibling recipe such as recipes/evaluate.py
# would then shadow the `evaluate` library that the held-out scoring imports.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

from trl import GRPOConfig, ModelConfig, TrlParser  # noqa: E402

from ladder_hf.grpo import ScriptArguments, main  # noqa: E402

if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
