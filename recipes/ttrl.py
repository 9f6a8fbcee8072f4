"""TTRL recipe: per test problem, a variant tree, GRPO on the variants only, answers, weights restored.

    python recipes/ttrl.py --config recipes/configs/ttrl_smollm2_cpu.yaml [--any_option value ...]
    ladder-hf ttrl --config recipes/configs/ttrl_smollm2_cpu.yaml        # the same

Options: `ladder_hf.ttrl.TTRLArguments` (problems, variant budget, eval cadence, samples, restore
strategy), TRL's `GRPOConfig` (`max_steps` = GRPO steps per problem) and `ModelConfig`.
Scores are reported apart: base pass@1, pass@1 after TTRL, and solved during TTRL
(verifier-selected pass@k, the paper's metric). See docs/ttrl.md.
"""

import sys

from ladder_hf.ttrl import main

if __name__ == "__main__":
    sys.exit(main())
