"""The ``integration_bee`` evaluate metric (``integration_bee.py``) and its scoring (``scoring.py``).

Importing this package stays light: the ``evaluate.Metric`` subclass lives in
``ladder_hf.metrics.integration_bee.integration_bee`` and is normally reached through
``evaluate.load("integration_bee")`` (see :mod:`ladder_hf.metrics`).
"""
