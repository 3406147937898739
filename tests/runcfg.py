"""Tiny run configurations shared by the training-core tests."""


def tiny_overrides(**groups) -> dict:
    """A run of a few seconds: 256 synthetic images, VGG-19 at width 1/16, 5 epochs of 4 iterations."""
    base = {
        "data": {"dataset": "synthetic", "synthetic_train": 256, "synthetic_test": 128},
        "model": {"arch": "vgg19", "width": 0.0625},
        "pruning": {"update_interval": 2, "sparsity": 0.9},
        "training": {"epochs": 5, "batch_size": 64, "lr": 0.02, "milestones": [3], "eval_batch_size": 128},
        "run": {"threads": 1},
    }
    for g, vals in groups.items():
        base.setdefault(g, {}).update(vals)
    return base
