"""Entry point for ``python -m ocr_core``."""

import sys

from ocr_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
