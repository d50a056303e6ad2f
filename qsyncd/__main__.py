"""Entry point for ``python -m qsyncd``."""

import sys

from qsyncd.cli import main

if __name__ == "__main__":
    sys.exit(main())
