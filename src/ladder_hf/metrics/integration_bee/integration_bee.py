"""MIT Integration Bee metric: numerically verified accuracy, pass@k and majority vote for integrals."""

import datasets
import evaluate

from ladder_hf import LADDER_CITATION
from ladder_hf.metrics.integration_bee.scoring import score

_CITATION = (
    LADDER_CITATION
    + """\
@misc{chen2021codex,
  title         = {Evaluating Large Language Models Trained on Code},
  author        = {Mark Chen and others},
  year          = {2021},
  eprint        = {2107.03374},
  archivePrefix = {arXiv}
}
"""
)

_DESCRIPTION = """\
Scores answers to integration problems the way LADDER (Simonds & Yoshiyama, 2025) scores the MIT
Integration Bee: an answer counts when ladder_hf's sandboxed numeric verifier accepts it (an
antiderivative whose derivative matches the integrand, or a definite value matching the integral).
Predictions are model completions (the answer inside <answer>...</answer> is extracted as the
training reward does) or bare answers in sympy syntax. References are bundled problem ids such as
"mit-2025-q01" or problem dicts. With several predictions per problem it reports unbiased pass@k
(Chen et al., 2021) and majority-vote accuracy, grouping numerically equivalent answers.
Problems of the MIT Integration Bee are (c) MIT Integration Bee, reproduced for research with
attribution.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one string per problem, or a list of strings per problem (k samples). A string is a
        completion with an <answer>...</answer> block or a bare answer in sympy syntax (no "+ C").
    references: one per problem, either a bundled problem id ("mit-2025-q01") or a dict with
        "integrand" (sympy syntax in x) and optional "lower"/"upper" ("" or missing = indefinite).
    answer_format: "auto" (default; tagged answer if the text has answer tags, else the whole text),
        "tagged" (only a tagged answer counts, like the reward) or "bare" (the whole text).
    timeout: seconds allowed to verify one answer (default 5.0); a timed-out check is retried once with 4x.
    k: the k values for pass@k (default: 1, powers of two below n, and n samples).
Returns:
    accuracy: mean correctness (with k samples: the mean fraction of correct samples, i.e. pass@1).
    count: number of problems. num_predictions: number of predictions.
    answer_rate: fraction of predictions with an extractable answer.
    correct, answers, reasons: per problem (lists of lists with several samples).
    pass@<k>, majority_vote_accuracy, num_correct, majority_answer, majority_correct: with several
        samples per problem.
    ids and per_year (accuracy etc. per exam year): when the problems have ids / years.
Examples:
    >>> import evaluate
    >>> bee = evaluate.load("integration_bee")
    >>> references = [{"integrand": "x**2"}, {"integrand": "sin(x)", "lower": "0", "upper": "pi"}]
    >>> bee.compute(predictions=["<answer>x**3/3</answer>", "sin(x)"], references=references)["accuracy"]
    0.5
"""

_REFERENCE = {
    "id": datasets.Value("string"),
    "integrand": datasets.Value("string"),
    "lower": datasets.Value("string"),
    "upper": datasets.Value("string"),
    # optional: the official value of a definite problem, used only when quadrature cannot establish it
    "answer": datasets.Value("string"),
    # optional: a problem known to be wrong (its integrand contradicts its answer), scored but not counted
    "excluded": datasets.Value("bool"),
}


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class IntegrationBee(evaluate.Metric):
    """``evaluate.load("integration_bee")``: verified accuracy, pass@k and majority vote on integrals."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"), "references": _REFERENCE}),
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("string")), "references": _REFERENCE}
                ),
            ],
            reference_urls=["https://arxiv.org/abs/2503.00735"],
        )

    # evaluate stores inputs in Arrow with one schema per call, so string ids and dicts are brought
    # to one dict form here; _compute looks ids up in the bundled problem sets.
    def compute(self, *, predictions=None, references=None, **kwargs):
        """Score ``predictions`` against ``references`` (problem ids or dicts); see the arguments below."""
        return super().compute(predictions=predictions, references=_normalize(references), **kwargs)

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of predictions and references (problem ids or dicts) for a later ``compute()``."""
        return super().add_batch(predictions=predictions, references=_normalize(references), **kwargs)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Add one prediction and its reference (a problem id or dict) for a later ``compute()``."""
        return super().add(prediction=prediction, reference=_normalize_one(reference), **kwargs)

    def _compute(self, predictions, references, answer_format="auto", timeout=5.0, k=None):
        refs = [r["id"] if r.get("id") and not r.get("integrand") else r for r in references]
        return score(predictions, refs, answer_format=answer_format, timeout=timeout, k=k)


def _normalize_one(reference):
    if reference is None:
        return None
    if isinstance(reference, str):
        return {"id": reference, "integrand": "", "lower": "", "upper": "", "answer": "", "excluded": False}
    if isinstance(reference, dict):
        unknown = set(reference) - set(_REFERENCE)
        if unknown:
            raise ValueError(f"unknown reference keys {sorted(unknown)}; expected {sorted(_REFERENCE)}")
        row = {key: "" if reference.get(key) is None else str(reference[key]) for key in _REFERENCE}
        return {**row, "excluded": bool(reference.get("excluded"))}
    raise TypeError(f"a reference is a problem id or a dict, not {type(reference).__name__}")


def _normalize(references):
    if references is None:
        return None
    return [_normalize_one(r) for r in references]
