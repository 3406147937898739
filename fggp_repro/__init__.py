"""fggp_repro: the deterministic training core of the FGGP reproducibility package.

Configs (``config``), data (``data``), models (``models``), pruning (``pruning``), the trainer
(``trainer``), run records (``records``) and the command line (``cli``). Never imports pandas,
seaborn or the ``analysis`` package.
"""

__version__ = "0.1.0"
