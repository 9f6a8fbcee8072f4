"""Variant trees for LADDER: model-written and symbolic generators with quality control.

Example:
    >>> from ladder_hf.variants import SymbolicGenerator, generate_tree
    >>> problems = [{"id": "p1", "integrand": "x**2*exp(x)", "lower": "", "upper": ""}]
    >>> nodes = generate_tree(problems, SymbolicGenerator(seed=0), depth=2, out_dir="variants/demo")  # doctest: +SKIP

See docs/variants.md.
"""

from ladder_hf.variants.base import Candidate, VariantGenerator, parse_integrand
from ladder_hf.variants.generators import (
    GENERATOR_KINDS,
    ModelVariantGenerator,
    build_variant_prompt,
    extract_variants,
    make_generator,
)
from ladder_hf.variants.quality import (
    ContaminationGuard,
    FingerprintIndex,
    QualityConfig,
    difficulty,
    profile_batch,
    solvability_batch,
)
from ladder_hf.variants.symbolic import MUTATIONS, SymbolicGenerator
from ladder_hf.variants.transformations import PERSONAS, TRANSFORMATIONS, Transformation, sample_transformations
from ladder_hf.variants.tree import FUNNEL_STAGES, generate_tree, read_funnel

__all__ = [
    "FUNNEL_STAGES",
    "GENERATOR_KINDS",
    "MUTATIONS",
    "PERSONAS",
    "TRANSFORMATIONS",
    "Candidate",
    "ContaminationGuard",
    "FingerprintIndex",
    "ModelVariantGenerator",
    "QualityConfig",
    "SymbolicGenerator",
    "Transformation",
    "VariantGenerator",
    "build_variant_prompt",
    "difficulty",
    "extract_variants",
    "generate_tree",
    "make_generator",
    "parse_integrand",
    "profile_batch",
    "read_funnel",
    "sample_transformations",
    "solvability_batch",
]
