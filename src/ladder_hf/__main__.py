"""``python -m ladder_hf``: the ``ladder-hf`` command line (the console script of pyproject.toml)."""

import sys

from ladder_hf.cli import main

if __name__ == "__main__":
    sys.exit(main())
