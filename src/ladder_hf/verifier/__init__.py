"""Strict, safe and fast verification of integration answers (LADDER's reward).

Public API:
    - :func:`parse_math`: the only way model-written text becomes a sympy expression.
    - :func:`verify_antiderivative`, :func:`verify_definite`, :func:`verify_batch` ->
      :class:`VerificationResult` (``.correct``, ``.reason``, ``.status``, ``.checks``).
    - :func:`run_sandboxed` -> list of :class:`SandboxOutcome` (``.ok``, ``.value``, ``.error``):
      run any CPU-heavy sympy/mpmath work on untrusted input in worker processes.
    - :func:`start_workers` / :func:`shutdown`: start the worker pool ahead of the first batch / stop it.

Example:
    >>> from ladder_hf.verifier import verify_antiderivative
    >>> verify_antiderivative("x*cos(x)", r"x\\sin x + \\cos x").correct  # doctest: +SKIP
    True
"""

from .core import (
    MIN_CHECKS,
    VerificationResult,
    verify_antiderivative,
    verify_batch,
    verify_definite,
)
from .numeric import Program, compile_math
from .parsing import MathParseError, parse_math
from .sandbox import SandboxConfig, SandboxOutcome, WorkerPool, run_sandboxed, shutdown, start_workers

__all__ = [
    "MIN_CHECKS",
    "MathParseError",
    "Program",
    "SandboxConfig",
    "SandboxOutcome",
    "VerificationResult",
    "WorkerPool",
    "compile_math",
    "parse_math",
    "run_sandboxed",
    "shutdown",
    "start_workers",
    "verify_antiderivative",
    "verify_batch",
    "verify_definite",
]
