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
    # the usual CIFAR ResNet-50 (kuangliu) count, 23,520,842, less the 10 classifier biases the authors drop
    assert sum(p.numel() for p in m.parameters()) == 23_520_832
    assert m.linear.bias is None
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
    # ResNet-50's convolutions and its classifier (the authors' bias=False) have no bias: weights only
    assert models.denominator(models.build("resnet50")) == 23_467_712


def test_authors_init_of_vgg19_draws_the_authors_distributions():
    torch.manual_seed(0)
    m = models.build("vgg19", weight_init="authors")
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    # a deep 512->512 convolution: He-normal fan-in, std = sqrt(2 / (3*3*512)) = 0.020833 (2.36 M draws)
    assert abs(convs[-1].weight.std().item() - 0.0208333) < 2e-4
    assert abs(convs[-1].weight.mean().item()) < 1e-4
    # the first convolution: fan-in 3*3*3 = 27, std = sqrt(2/27) = 0.27217 (1,728 draws: +-5 %)
    assert abs(convs[0].weight.std().item() - 0.27217) < 0.0136
    assert all(float(c.bias.detach().abs().max()) == 0.0 for c in convs)
    bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
    assert all(bool((b.weight == 1).all()) and bool((b.bias == 0).all()) for b in bns)
    # classifier ~ N(0, 0.01): 5,120 draws, std within +-4 %
    assert abs(m.classifier.weight.std().item() - 0.01) < 4e-4 and float(m.classifier.bias.detach().abs().max()) == 0.0
    # PyTorch's default for the same conv is kaiming_uniform(a=sqrt(5)): std = 1/sqrt(3*fan_in) = 0.0085
    torch.manual_seed(0)
    d = models.build("vgg19", weight_init="torch")
    dconvs = [mod for mod in d.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert abs(dconvs[-1].weight.std().item() - 0.0085052) < 1e-4


def test_resnet50_6n2_is_granets_depth_50_network():
    m = models.build("resnet50-6n2")
    # by hand: stem 3*32*9 = 864; stage 1: 16 convs 32*32*9 = 147,456; stage 2: 32*64*9 + 64*64*9 + 1x1 32*64
    # + 14 convs 64*64*9 = 573,440; stage 3: 64*128*9 + 128*128*9 + 1x1 64*128 + 14 convs 128*128*9 = 2,293,760;
    # Linear 128*10 = 1,280
    assert _conv_linear_weight_count(m) == 864 + 147_456 + 573_440 + 2_293_760 + 1_280 == 3_016_800
    assert [len(s) for s in (m.layer1, m.layer2, m.layer3)] == [8, 8, 8]
    # 49 convolutions + 1 Linear = depth 50 counted as GraNet counts (6n + 2 with n = 8)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d) and mod.kernel_size == (3, 3)]
    assert len(convs) == 49
    assert m.linear.bias is not None and m(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    names = [n for n, _ in models.prunable_layers(m)]
    assert "conv1" not in names and "layer2.0.downsample.0" in names and len(names) == 49 + 2 + 1 - 1


def test_resnet50_6n2_authors_init_is_granets_fan_out_kaiming():
    torch.manual_seed(0)
    m = models.build("resnet50-6n2", weight_init="authors")
    conv = m.layer3[7].conv2  # 128 -> 128, fan_out = 3*3*128 = 1,152: std sqrt(2/1152) = 0.041667 (147,456 draws)
    assert abs(conv.weight.std().item() - 0.0416667) < 4e-4
    assert abs(m.linear.weight.std().item() - 0.01) < 0.001 and float(m.linear.bias.detach().abs().max()) == 0.0
