"""Evaluate a model (and sympy's integrate) on MIT Integration Bee problems.

Same as ``ladder-hf evaluate``; see docs/evaluation.md. Examples:

    python recipes/evaluate_bee.py                              # embedded model, mit-2025, k=1
    python recipes/evaluate_bee.py --model Qwen/Qwen2.5-1.5B-Instruct --num_samples 8 --output_dir outputs/qwen
    python recipes/evaluate_bee.py --model ./my-checkpoint --backend vllm --problem_set mit
"""

import sys

from ladder_hf.evaluation import main

if __name__ == "__main__":
    sys.exit(main())
