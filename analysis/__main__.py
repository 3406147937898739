"""``python -m analysis figures|audit ...`` (the same as ``fggp-repro figures|audit ...``)."""

import sys

from .cli import main

sys.exit(main())
