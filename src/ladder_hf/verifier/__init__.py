"""Strict, safe and fast verification of integration answers (LADDER's reward).

Public API:
    - :func:`parse_math`: the only way model-written text becomes a sympy expression (it raises
      :class:`MathParseError`, or its subclass :class:`RejectedAnswer` for an integral).
      :func:`parse_expression` gives the intermediate form that both it (through :func:`to_sympy`) and
      :func:`compile_math` (numeric evaluation) are built from.
    - :func:`verify_antiderivative`, :func:`verify_definite`, :func:`verify_batch` ->
      :class:`VerificationResult` (``.correct``, ``.reason``, ``.status`` (a :class:`Status`), ``.checks``).
    - :func:`run_sandboxed` -> list of :class:`SandboxOutcome` (``.ok``, ``.value``, ``.error``,
      ``.failure`` (a :class:`SandboxFailure`)): run any CPU-heavy sympy/mpmath work on untrusted input
      in worker processes.
    - :func:`start_workers` / :func:`shutdown`: start the worker pool ahead of the first batch / stop it.

Example:
    >>> from ladder_hf.verifier import verify_antiderivative
    >>> verify_antiderivative("x*cos(x)", r"x\\sin x + \\cos x").correct  # doctest: +SKIP
    True
"""

from .core import (
    MIN_CHECKS,
    Status,
    VerificationResult,
    verify_antiderivative,
    verify_batch,
    verify_definite,
)
from .numeric import Program, compile_math
from .parsing import MathParseError, RejectedAnswer, parse_expression, parse_math, to_sympy
from .sandbox import (
    SandboxConfig,
    SandboxFailure,
    SandboxOutcome,
    WorkerPool,
    run_sandboxed,
    shutdown,
    start_workers,
)

__all__ = [
    "MIN_CHECKS",
    "MathParseError",
    "Program",
    "RejectedAnswer",
    "SandboxConfig",
    "SandboxFailure",
    "SandboxOutcome",
    "Status",
    "VerificationResult",
    "WorkerPool",
    "compile_math",
    "parse_expression",
    "parse_math",
    "run_sandboxed",
    "shutdown",
    "start_workers",
    "to_sympy",
    "verify_antiderivative",
    "verify_batch",
    "verify_definite",
]
