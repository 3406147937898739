"""End-of-run diagnostics (fggp_repro/diagnostics.py): dead units and BatchNorm-recalibrated accuracy,
checked on hand-built networks whose answers are worked out by hand."""

import torch
from torch import nn

from fggp_repro import data as D
from fggp_repro import diagnostics as G
from fggp_repro import engine as E


def test_dead_units_counts_all_zero_output_units_of_prunable_layers():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3), nn.Flatten(), nn.Linear(5, 3))
    with torch.no_grad():
        model[0].weight[0] = 0  # the first conv is not prunable: not counted
        model[1].weight[1] = 0
        model[1].weight[3] = 0
        model[1].weight[4, :2] = 0  # only part of a filter: alive
        model[3].weight[2] = 0
    assert G.dead_units(model) == {"total": 3, "per_layer": {"1.weight": 2, "3.weight": 1}}
    assert G.dead_units(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 5, 3))) == {"total": 0, "per_layer": {}}


def _sign_net(running_mean: float) -> nn.Module:
    """Predicts class 1 iff BatchNorm's output for channel 0 of the image is positive."""
    conv = nn.Conv2d(3, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1)
    lin = nn.Linear(1, 2)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
        bn.running_mean.fill_(running_mean)
        bn.num_batches_tracked.fill_(1000)  # as after training: a cumulative average must restart from zero
        lin.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        lin.bias.zero_()
    return nn.Sequential(conv, bn, nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin)


def _bright_dark_loader(n: int = 64) -> D.DeviceLoader:
    # class 1: channel 0 at 255 (normalised (1 - 0.4914) / 0.2470 = +2.06), class 0: at 0 (-1.99)
    y = torch.arange(n) % 2
    x = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    x[y == 1, 0] = 255
    return D.DeviceLoader(x, y, torch.device("cpu"))


def test_bn_recalibration_repairs_lagging_running_statistics_on_a_copy():
    loader = _bright_dark_loader()
    model = _sign_net(running_mean=100.0)  # far above both classes: every image is predicted class 0
    assert E.evaluate(model, loader, 16) == 50.0
    # 4 batches of 16 cover all 64 images: running mean = the midpoint of +2.06 and -1.99, between the classes
    acc = G.bn_recalibrated_accuracy(model, loader, loader, seed=0, epoch=3, batch_size=16, eval_batch_size=16,
                                     augment=False, precision="fp32", batches=4)
    assert acc == 100.0
    # the model itself keeps its statistics
    assert float(model[1].running_mean) == 100.0 and E.evaluate(model, loader, 16) == 50.0


def test_bn_recalibrated_accuracy_is_none_without_batchnorm():
    loader = _bright_dark_loader(8)
    model = nn.Sequential(nn.Conv2d(3, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
    assert G.bn_recalibrated_accuracy(model, loader, loader, seed=0, epoch=0, batch_size=8, eval_batch_size=8,
                                      augment=False, precision="fp32") is None
