"""Evaluation metrics shipped with ladder_hf, and their registration with 🤗 evaluate.

``evaluate.load("integration_bee")`` (a bare name) only searches the Hub and evaluate's modules
cache; it has no plugin mechanism. :func:`register` therefore writes a three-line shim module into
that cache, at the place where evaluate looks for a cached canonical metric:

    $HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--integration_bee/<sha256>/integration_bee.py

The shim only imports :class:`~ladder_hf.metrics.integration_bee.integration_bee.IntegrationBee`
from the installed package, so it never goes stale when ladder_hf is upgraded. Once written, any
process (any working directory, ``HF_EVALUATE_OFFLINE=1``, without importing ladder_hf) can call
``evaluate.load("integration_bee")``.

When it is written:
    * explicitly: ``ladder_hf.metrics.register()`` or ``python -m ladder_hf.metrics``;
    * on first use: importing :mod:`ladder_hf.evaluation` (so every ``ladder-hf evaluate`` run).

Loading by path needs no registration: ``evaluate.load(ladder_hf.metrics.metric_path())``.

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
import tempfile
from pathlib import Path

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


def register(name: str = "integration_bee", cache: str | os.PathLike | None = None) -> Path:
    """Make ``evaluate.load(name)`` resolve to ladder_hf's metric by bare name; return the shim path.

    Idempotent and cheap when already registered (one stat). Safe under concurrent calls: files are
    written under temporary names and renamed into place.

    Args:
        name: the metric to register (only ``"integration_bee"`` ships today).
        cache: evaluate's modules cache; defaults to :func:`modules_cache` (``$HF_MODULES_CACHE``).

    Example:
        >>> path = register()  # doctest: +SKIP
        >>> path.name
        'integration_bee.py'
    """
    target = shim_path(name, cache)
    source = shim_source(name)
    # Every package level needs an __init__.py: evaluate imports the shim as
    # evaluate_modules.metrics.evaluate-metric--<name>.<hash>.<name>.
    root = target.parents[3]
    for folder in (root, *(target.parents[i] for i in (2, 1, 0))):
        folder.mkdir(parents=True, exist_ok=True)
        init = folder / "__init__.py"
        if not init.exists():
            _atomic_write(init, "")
    if not target.is_file() or target.read_text(encoding="utf-8") != source:
        _atomic_write(target, source)
    _make_newest(target)
    return target


def ensure_registered(name: str = "integration_bee") -> Path | None:
    """:func:`register`, but never raises (a read-only cache only costs the bare-name lookup)."""
    try:
        return register(name)
    except OSError as err:
        logger.warning(
            "could not register evaluate metric %r (%s); load it by path instead: %s", name, err, metric_path(name)
        )
        return None


def _check_name(name: str) -> None:
    if name not in METRIC_NAMES:
        raise ValueError(f"unknown ladder_hf metric {name!r}; available: {list(METRIC_NAMES)}")


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
