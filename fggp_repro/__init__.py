"""fggp_repro: the deterministic training core of the FGGP reproducibility package.

Configs (``config``), data (``data``), models (``models``), pruning (``pruning``), the trainer
(``trainer``), run records (``records``) and the command line (``cli``). Never imports pandas,
seaborn or the ``analysis`` package.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # ``fggp_repro.load_model(path)`` without importing torch for every command that never loads a model
    if name in ("load_model", "apply_masks"):
        from . import model_file

        return getattr(model_file, name)
    raise AttributeError(f"module 'fggp_repro' has no attribute {name!r}")
