"""``python -m analysis figures|audit|plan|calibrate ...`` (the first three are also ``fggp-repro figures|audit|plan``)."""

import sys

from .cli import main

sys.exit(main())
