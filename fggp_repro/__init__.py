"""fggp_repro: the deterministic training core of the FGGP reproducibility package.

- ``spec/``: the contracts, in the standard library alone: the run configuration and run id (``spec.config``), the
  run record field by field (``spec.record``), the platform of a record, method labels, exit codes, file writing;
- ``trainer`` (one run, epoch by epoch) on ``engine`` (set-up, a training step, evaluation, sparsity, the weights'
  hash), ``checkpoint`` (resumable state), ``run_record`` (the record of a finished run), ``provenance``,
  ``records`` (the files of a run), ``diagnostics`` and ``interrupts`` (Ctrl-C and SIGTERM);
- ``pruning/``: the pure pruning math and one pruner per method family (``pruning.pruner``);
- ``data``, ``models``, ``seeding``, ``isa`` (oneDNN's instruction set), ``model_file`` (``--save-model``);
- ``cli`` (the command line), ``grid``, ``verify``, ``selftest``.

Never imports pandas, seaborn or the ``analysis`` package.
"""

__version__ = "0.1.0"


def __getattr__(name):
    # ``fggp_repro.load_model(path)`` without importing torch for every command that never loads a model
    if name in ("load_model", "apply_masks"):
        from . import model_file

        return getattr(model_file, name)
    raise AttributeError(f"module 'fggp_repro' has no attribute {name!r}")
