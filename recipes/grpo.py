"""LADDER GRPO training recipe (open-r1 style).

    accelerate launch --config_file recipes/accelerate_configs/cpu.yaml recipes/grpo.py \
        --config recipes/configs/smollm2_cpu.yaml [--any_option value ...]

Options: `ladder_hf.grpo.ScriptArguments` (data, prompt, rewards, curriculum, held-out eval),
TRL's `GRPOConfig` (trainer, vLLM, Hub) and `ModelConfig` (model, dtype, LoRA). See docs/training.md.
"""

from trl import GRPOConfig, ModelConfig, TrlParser

from ladder_hf.grpo import ScriptArguments, main

if __name__ == "__main__":
    parser = TrlParser((ScriptArguments, GRPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config()
    main(script_args, training_args, model_args)
