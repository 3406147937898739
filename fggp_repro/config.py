"""``fggp_repro.config`` is :mod:`fggp_repro.spec.config`, under the import path scripts and notebooks know.

One module object under two names (not a copy), so every class and constant is the same either way.
"""

import sys

from .spec import config

sys.modules[__name__] = config
