"""Evaluation metrics shipped with ladder_hf, and their registration with 🤗 evaluate.

``evaluate.load("integration_bee")`` (a bare name) only searches the Hub and evaluate's modules
cache; it has no plugin mechanism. :func:`register` therefore writes a three-line shim module into
that cache, at the place where evaluate looks for a cached canonical metric:

    $HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--integration_bee/<sha256>/integration_bee.py

The shim only imports :class:`~ladder_hf.metrics.integration_bee.integration_bee.IntegrationBee`
from the installed package, so it never goes stale when ladder_hf is upgraded. Once written, any
process (any working directory, ``HF_EVALUATE_OFFLINE=1``, without importing ladder_hf) can call
``evaluate.load("integration_bee")``.

Nothing writes it on import: importing ladder_hf (or any of its modules, in the verifier's sandbox
workers too) leaves evaluate's cache alone. It is written only when asked:
    * explicitly: ``ladder-hf register-metric``, ``python -m ladder_hf.metrics`` or
      :func:`register`, once after installing;
    * at run time by the commands that score with the metric (``ladder-hf evaluate``, held-out
      evaluation during ``ladder-hf train``), through :func:`register` or :func:`load`.

Registration never raises: when the cache is not writable it logs a warning and returns ``None``,
and :func:`load` then builds the metric from the installed package. Loading by path needs no
registration at all: ``evaluate.load(ladder_hf.metrics.metric_path())``.

Example:
    >>> from ladder_hf.metrics import register
    >>> shim = register()  # doctest: +SKIP
    >>> import evaluate
    >>> bee = evaluate.load("integration_bee")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ladder_hf.store import atomic_write

if TYPE_CHECKING:
    import evaluate

logger = logging.getLogger(__name__)

METRIC_NAMES = ("integration_bee",)

# evaluate 0.4.6 layout (evaluate/loading.py, CachedEvaluationModuleFactory): the dynamic modules
# package is "evaluate_modules", canonical metrics are cached as "evaluate-metric--<name>", and only
# sub-folders whose name is 64 characters long count as versions (the newest file mtime wins).
_DYNAMIC_MODULES = "evaluate_modules"
_NAMESPACE = "metrics"
_CANONICAL_PREFIX = "evaluate-metric--"

_SHIM_TEMPLATE = """\
# Written by ladder_hf.metrics.register() so that evaluate.load("{name}") finds the metric that is
# installed with the ladder_hf package. Safe to delete: `python -m ladder_hf.metrics` rewrites it.
from ladder_hf.metrics.{name}.{name} import {cls}

__all__ = ["{cls}"]
"""
_CLASSES = {"integration_bee": "IntegrationBee"}


def metric_path(name: str = "integration_bee") -> str:
    """Folder of a bundled metric, for ``evaluate.load(path)`` (needs no registration).

    Example:
        >>> import evaluate
        >>> bee = evaluate.load(metric_path())  # doctest: +SKIP
    """
    _check_name(name)
    return str(Path(__file__).resolve().parent / name)


def modules_cache() -> Path:
    """The folder evaluate uses as ``HF_MODULES_CACHE`` in this process.

    Taken from ``evaluate.config`` when evaluate is already imported (it reads the environment once,
    at import); otherwise computed from the same variables in the same way, so that registering
    does not have to import evaluate (several seconds).
    """
    config = sys.modules.get("evaluate.config")
    if config is not None:
        return Path(config.HF_MODULES_CACHE)
    if os.environ.get("HF_MODULES_CACHE"):
        return Path(os.environ["HF_MODULES_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    hf_home = os.path.expanduser(os.environ.get("HF_HOME", os.path.join(xdg, "huggingface")))
    return Path(hf_home) / "modules"


def shim_source(name: str = "integration_bee") -> str:
    """Text of the shim module :func:`register` writes for ``name``."""
    _check_name(name)
    return _SHIM_TEMPLATE.format(name=name, cls=_CLASSES[name])


def shim_path(name: str = "integration_bee", cache: str | os.PathLike | None = None) -> Path:
    """Where :func:`register` writes the shim for ``name`` (whether or not it exists yet)."""
    source = shim_source(name)
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()  # 64 hex chars, as evaluate requires
    root = Path(cache) if cache is not None else modules_cache()
    return root / _DYNAMIC_MODULES / _NAMESPACE / f"{_CANONICAL_PREFIX}{name}" / digest / f"{name}.py"


def register(name: str = "integration_bee", cache: str | os.PathLike | None = None) -> Path | None:
    """Make ``evaluate.load(name)`` resolve to ladder_hf's metric by bare name; return the shim path.

    Idempotent and cheap when already registered (one stat). Safe under concurrent calls: files are
    written under temporary names and renamed into place. Never raises for a cache it cannot write
    (read-only home, full disk): it logs a warning and returns ``None`` (:func:`load` still works).

    Args:
        name: the metric to register (only ``"integration_bee"`` ships today).
        cache: evaluate's modules cache; defaults to :func:`modules_cache` (``$HF_MODULES_CACHE``).

    Returns:
        The shim's path, or ``None`` when it could not be written.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as cache:
        ...     register(cache=cache).name
        'integration_bee.py'
    """
    target = shim_path(name, cache)
    try:
        _write_shim(target, shim_source(name))
    except OSError as err:
        logger.warning(
            "could not register evaluate metric %r in %s (%s): evaluate.load(%r) will not find it by name; "
            "ladder_hf.metrics.load(%r) still works",
            name,
            target.parents[4],
            err,
            name,
            name,
        )
        return None
    return target


def load(name: str = "integration_bee", **kwargs: Any) -> evaluate.EvaluationModule:
    """``evaluate.load(name)`` for a ladder_hf metric, registering it first; never fails on the cache.

    For commands that score with the metric: they register at run time (so that a later
    ``evaluate.load("integration_bee")`` works by bare name), but a modules cache they cannot write
    never stops them. evaluate copies even a metric loaded by path into that same cache, so the
    fallback builds the metric class from the installed package directly: the module
    ``evaluate.load(metric_path(name))`` would load, the same scores.

    Args:
        name: the metric (``"integration_bee"``).
        **kwargs: forwarded to ``evaluate.load`` / the metric class (``keep_in_memory=True``, ...).

    Example:
        >>> from ladder_hf.metrics import load
        >>> bee = load("integration_bee", keep_in_memory=True)  # doctest: +SKIP
        >>> bee.compute(predictions=["<answer>x**3/3</answer>"], references=[{"integrand": "x**2"}])  # doctest: +SKIP
    """
    _check_name(name)
    if register(name) is not None:
        import evaluate

        return evaluate.load(name, **kwargs)
    from ladder_hf.metrics.integration_bee.integration_bee import IntegrationBee

    return IntegrationBee(**kwargs)


def main(argv: list[str] | None = None, prog: str = "ladder-hf register-metric") -> int:
    """``ladder-hf register-metric`` / ``python -m ladder_hf.metrics``: register and print the shim paths.

    Returns 1 (after the warning) when a metric could not be registered; ``load()`` still works then.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog,
        description='Register ladder_hf\'s metrics with evaluate, so that evaluate.load("integration_bee") '
        "finds them by bare name in any later process.",
    )
    parser.add_argument("names", nargs="*", default=list(METRIC_NAMES), help="metrics to register (default: all)")
    parser.add_argument("--cache", default=None, help="evaluate's modules cache (default: $HF_MODULES_CACHE)")
    args = parser.parse_args(argv)
    failed = 0
    for name in args.names:
        try:
            path = register(name, cache=args.cache)
        except ValueError as err:  # an unknown name
            parser.error(str(err))
        print(f"{name}: {path or 'not registered (see the warning)'}  (by path: {metric_path(name)})")
        failed += path is None
    return 1 if failed else 0


def _write_shim(target: Path, source: str) -> None:
    # Every package level needs an __init__.py: evaluate imports the shim as
    # evaluate_modules.metrics.evaluate-metric--<name>.<hash>.<name>.
    root = target.parents[3]
    for folder in (root, *(target.parents[i] for i in (2, 1, 0))):
        folder.mkdir(parents=True, exist_ok=True)
        init = folder / "__init__.py"
        if not init.exists():
            atomic_write(init, "")
    if not target.is_file() or target.read_text(encoding="utf-8") != source:
        atomic_write(target, source)
    _make_newest(target)


def _check_name(name: str) -> None:
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown ladder_hf metric {name!r}; available: {list(METRIC_NAMES)}")


def _make_newest(target: Path) -> None:
    # evaluate picks the version folder whose module file is newest; a shim left by another
    # ladder_hf version must not shadow this one.
    own = target.stat().st_mtime
    others = [
        p.stat().st_mtime
        for p in target.parents[1].glob(f"*/{target.name}")
        if p != target and len(p.parent.name) == 64
    ]
    if others and max(others) >= own:
        newest = max(others) + 1.0
        os.utime(target, (newest, newest))
