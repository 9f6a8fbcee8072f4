"""Evaluate a model (and sympy's integrate) on MIT Integration Bee problems.

Same as ``ladder-hf evaluate``; see docs/evaluation.md. Examples:

    python recipes/evaluate.py                                  # embedded model, mit-2025, k=1
    python recipes/evaluate.py --model Qwen/Qwen2.5-1.5B-Instruct --num_samples 8 --output_dir outputs/qwen
    python recipes/evaluate.py --model ./my-checkpoint --backend vllm --problem_set mit
"""

import os
import sys

# This script shares its name with the `evaluate` library, and Python puts the script's folder first
# on sys.path: drop it so that `import evaluate` finds the library, not this file.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

from ladder_hf.evaluation import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
