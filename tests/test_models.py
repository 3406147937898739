import torch

from fggp_repro import models


def _conv_linear_weight_count(model):
    return sum(m.weight.numel() for _, m in models.conv_linear_weights(model))


def test_vgg19_matches_the_protocol():
    m = models.build("vgg19")
    # configuration E by hand: 3x3 kernels, channel pairs of the 16 convolutions, then Linear(512, 10)
    pairs = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256)] + [(256, 256)] * 3 + [(256, 512)] + [(512, 512)] * 7
    assert _conv_linear_weight_count(m) == sum(9 * a * b for a, b in pairs) + 512 * 10 == 20_024_000
    assert sum(p.numel() for p in m.parameters()) == 20_040_522  # the published "20.04 M" of GraNet's VGG-19
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 16 and all(c.bias is not None and c.kernel_size == (3, 3) for c in convs)
    assert sum(isinstance(mod, torch.nn.MaxPool2d) for mod in m.modules()) == 4
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_resnet50_matches_the_protocol():
    m = models.build("resnet50")
    assert sum(p.numel() for p in m.parameters()) == 23_520_842  # the usual CIFAR ResNet-50 (kuangliu) count
    assert round(_conv_linear_weight_count(m) / 1e6, 1) == 23.5
    assert m.conv1.kernel_size == (3, 3) and m.conv1.stride == (1, 1)
    assert [len(s) for s in (m.layer1, m.layer2, m.layer3, m.layer4)] == [3, 4, 6, 3]
    assert not any(isinstance(mod, (torch.nn.MaxPool2d, torch.nn.AdaptiveAvgPool2d)) for mod in m.modules())
    assert m(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_prunable_layers_exclude_only_the_first_conv():
    vgg = models.build("vgg19", width=0.125)
    names = [n for n, _ in models.prunable_layers(vgg)]
    assert "features.0" not in names and "classifier" in names and len(names) == 16
    res = models.build("resnet50", width=0.125)
    names = [n for n, _ in models.prunable_layers(res)]
    assert "conv1" not in names and "linear" in names and "layer1.0.shortcut.0" in names
    assert len(names) == 53  # 48 block convolutions + 4 shortcuts + the classifier


def test_width_multiplier_scales_channels():
    m = models.build("vgg19", width=0.125)
    assert m.features[0].out_channels == 8 and m.classifier.in_features == 64


def test_denominator_counts_weights_and_biases():
    # 20,024,000 weights + conv biases 2*64 + 2*128 + 4*256 + 8*512 = 5,504 + classifier bias 10
    assert models.denominator(models.build("vgg19")) == 20_029_514
    # ResNet-50's convolutions have no bias: weights + the classifier's 10 biases
    assert models.denominator(models.build("resnet50")) == 23_467_712 + 10
