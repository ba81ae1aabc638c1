"""``python -m qt45``."""

import sys

from .cli import main

sys.exit(main())
