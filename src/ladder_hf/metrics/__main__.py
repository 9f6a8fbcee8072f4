"""``python -m ladder_hf.metrics``: register ladder_hf's metrics with evaluate (as ``ladder-hf register-metric``)."""

from ladder_hf.metrics import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m ladder_hf.metrics"))
