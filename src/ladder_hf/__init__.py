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
    ladder_hf.evaluation    Integration Bee evaluation (recipes/evaluate.py)
    ladder_hf.models        the embedded default model (SmolLM2-135M-Instruct)
"""

__version__ = "0.1.0"
