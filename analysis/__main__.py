"""``python -m analysis figures|audit|plan|calibrate ...`` (the first three are also
``fggp-repro figures|audit|plan``)."""

import os
import sys

from .cli import main

try:
    sys.exit(main())
except KeyboardInterrupt:
    print("python -m analysis: interrupted; every file written so far is whole (each is replaced atomically)",
          file=sys.stderr)
    sys.exit(130)
except BrokenPipeError:  # the reader went away (``... | head``): stop quietly, as Unix tools do
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
    except OSError:
        pass
    sys.exit(141)
