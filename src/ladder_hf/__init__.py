"""ladder_hf: LADDER and TTRL for the Hugging Face stack.

Where things live:
    ladder_hf.verifier      strict, sandboxed numeric check of antiderivatives and definite integrals
    ladder_hf.rewards       TRL reward functions (integration_reward, format_reward) and their registry
    ladder_hf.problems      bundled MIT Integration Bee and undergraduate problem sets
    ladder_hf.variants      variant-tree generation (model-written and symbolic) with quality control
    ladder_hf.dataset       LadderDataset, the datasets builder for variant trees
    ladder_hf.hub           versioned, tagged pushes of datasets to the Hub
    ladder_hf.grpo          LADDER training (recipes/grpo.py)
    ladder_hf.ttrl          test-time RL (recipes/ttrl.py)
    ladder_hf.evaluation    Integration Bee evaluation (recipes/evaluate_bee.py)
    ladder_hf.metrics       the integration_bee metric for evaluate (register it: ladder-hf register-metric)
    ladder_hf.models        the embedded default model (SmolLM2-135M-Instruct)

Importing ladder_hf writes nothing and starts nothing: heavy modules load on first use, and the
metric is registered with evaluate only by an explicit step (see ladder_hf.metrics).
"""

__version__ = "0.1.0"

# The paper every dataset card, builder and metric of the package cites.
LADDER_CITATION = """\
@misc{simonds2025ladder,
  title         = {LADDER: Self-Improving LLMs Through Recursive Problem Decomposition},
  author        = {Toby Simonds and Akira Yoshiyama},
  year          = {2025},
  eprint        = {2503.00735},
  archivePrefix = {arXiv},
  primaryClass  = {cs.LG}
}
"""

# Heavy names are resolved on first access, so `import ladder_hf` (and `ladder-hf --help`)
# does not import datasets, torch or TRL.
_LAZY = {
    "LadderDataset": "ladder_hf.dataset",
    "load_ladder_dataset": "ladder_hf.dataset",
    "verify_antiderivative": "ladder_hf.verifier",
    "verify_definite": "ladder_hf.verifier",
    "integration_reward": "ladder_hf.rewards",
    "format_reward": "ladder_hf.rewards",
    "load_default_model": "ladder_hf.models",
    "load_problems": "ladder_hf.problems",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    """Resolve a lazy export (:data:`_LAZY`) by importing its module on first access."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ladder_hf' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's globals and its lazy exports, so ``dir(ladder_hf)`` and tab completion list the public API."""
    return sorted({*globals(), *_LAZY})
