"""VGG-19-BN and ResNet-50 for 32x32 CIFAR images, with a channel width multiplier.

Both follow docs/protocol.md (networks) (and the GraNet / FGGP code they come from). Global pooling uses
``F.avg_pool2d`` with a fixed kernel, not ``AdaptiveAvgPool2d``, whose CUDA backward is
nondeterministic.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

# configuration E: 16 convolutions, 4 max-pools (the 5th pool of ImageNet VGG is the 2x2 average pool)
VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512)


def _w(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


class VGG19(nn.Module):
    """VGG-19 with BatchNorm: 3x3 convolutions with bias, BN, ReLU; 2x2 average pool; Linear(512w, classes)."""

    def __init__(self, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in VGG19_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                c = _w(v, width)
                layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=True), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                c_in = c
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x):
        x = F.avg_pool2d(self.features(x), 2)
        return self.classifier(torch.flatten(x, 1))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class ResNet50(nn.Module):
    """CIFAR ResNet-50: 3x3 stride-1 stem, no max-pool, bottlenecks [3, 4, 6, 3], 4x4 average pool, bias-free Linear."""

    def __init__(self, num_classes: int = 10, width: float = 1.0):
        super().__init__()
        c = _w(64, width)
        self.conv1 = nn.Conv2d(3, c, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        stages = []
        c_in = c
        for i, (n_blocks, stride) in enumerate(zip((3, 4, 6, 3), (1, 2, 2, 2))):
            planes = _w(64 * 2**i, width)
            blocks = []
            for s in [stride] + [1] * (n_blocks - 1):
                blocks.append(Bottleneck(c_in, planes, s))
                c_in = planes * Bottleneck.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        # bias-free, as in the authors' archs/cifar10/resnet.py ("what used by granet")
        self.linear = nn.Linear(c_in, num_classes, bias=False)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(torch.flatten(out, 1))


class BasicBlock(nn.Module):
    """GraNet's CIFAR BasicBlock: two 3x3 convolutions; a 1x1 projection with its own BN when the shape changes."""

    def __init__(self, c_in: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        self.bn3 = None
        if stride != 1 or c_in != planes:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, planes, 1, stride=stride, bias=False))
            self.bn3 = nn.BatchNorm2d(planes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.bn3(self.downsample(x))
        return F.relu(out + residual)


class ResNet6n2(nn.Module):
    """GraNet's ``CIFAR/models/resnet.py`` ``resnet(depth)``: a 6n+2 BasicBlock network, 3 stages of n blocks,
    widths 32/64/128, 3x3 stem, 8x8 average pool, Linear(128, classes) with bias. ``resnet(depth=50)`` (n = 8)
    is what the FGGP authors' current script calls; 3,016,800 conv/linear weights."""

    def __init__(self, num_classes: int = 10, width: float = 1.0, depth: int = 50):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        widths = [_w(c, width) for c in (32, 64, 128)]
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        c_in = widths[0]
        stages = []
        for planes, stride in zip(widths, (1, 2, 2)):
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(BasicBlock(c_in, planes, s))
                c_in = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.linear = nn.Linear(c_in, num_classes)

    def forward(self, x):
        out = F.relu(self.bn(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.avg_pool2d(out, out.shape[3])
        return self.linear(torch.flatten(out, 1))


MODELS: dict[str, Callable[..., nn.Module]] = {"vgg19": VGG19, "resnet50": ResNet50, "resnet50-6n2": ResNet6n2}


def build(arch: str, width: float = 1.0, num_classes: int = 10, weight_init: str = "torch") -> nn.Module:
    """A freshly initialised network, drawn from the global RNG.

    ``weight_init="torch"``: PyTorch's layer defaults. ``"authors"``: the initialisation of the FGGP
    authors' code for that network (:func:`authors_init`).
    """
    model = MODELS[arch](num_classes=num_classes, width=width)
    if weight_init == "authors":
        authors_init(model, arch)
    elif weight_init != "torch":
        raise ValueError(f"unknown weight_init {weight_init!r}")
    return model


@torch.no_grad()
def authors_init(model: nn.Module, arch: str) -> None:
    """Re-initialise ``model`` as the FGGP authors' code does (LingkaiZhu1999/NetworkPruning @ 06dbe30).

    vgg19 (``archs/cifar10/vgg.py``, ``_initialize_weights``): every Conv2d weight ~ N(0, 2 / (k*k*c_in))
    (He-normal, fan-in), conv biases 0; BatchNorm weight 1, bias 0; Linear weight ~ N(0, 0.01), bias 0.
    resnet50 (``archs/cifar10/resnet.py``): that file draws no weights of its own, so PyTorch's defaults
    stand (nothing is changed here).
    resnet50-6n2 (GraNet's ``CIFAR/models/init_utils.py``, ``weights_init``, which the network applies
    to itself): Conv2d ~ N(0, 2 / (k*k*c_out)) (kaiming_normal, fan_out, relu); Linear ~ N(0, 0.01),
    bias 0; BatchNorm weight 1, bias 0.
    """
    if arch == "resnet50-6n2":
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 0.01)
                m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.fill_(1.0)
                m.bias.zero_()
        return
    if arch != "vgg19":
        return
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            n = m.kernel_size[0] * m.kernel_size[1] * m.in_channels
            m.weight.normal_(0.0, math.sqrt(2.0 / n))
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.fill_(1.0)
            m.bias.zero_()
        elif isinstance(m, nn.Linear):
            m.weight.normal_(0.0, 0.01)
            if m.bias is not None:
                m.bias.zero_()


def conv_linear_weights(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All Conv2d/Linear modules in definition order, as (qualified name, module)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv2d/Linear except the first convolution (docs/protocol.md: classifier and shortcuts included)."""
    layers = conv_linear_weights(model)
    first_conv = next(i for i, (_, m) in enumerate(layers) if isinstance(m, nn.Conv2d))
    return [layer for i, layer in enumerate(layers) if i != first_conv]


def denominator(model: nn.Module) -> int:
    """The sparsity denominator: all Conv2d/Linear weights and biases (the authors' convention)."""
    return sum(m.weight.numel() + (m.bias.numel() if m.bias is not None else 0) for _, m in conv_linear_weights(model))
