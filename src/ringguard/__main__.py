"""``python -m ringguard``: see :mod:`ringguard.cli`."""

import sys

from .cli import main

sys.exit(main())
