"""torchvision's ResNet and VGG written in plain torch, as references for the port.

torchvision is not installed, so the six architectures are defined here with
torchvision's module names (`state_dict()` keys equal torchvision's; a test
checks them against third_party/torchvision/state_dict_keys.json), plus
the "mlp" head.
`build` returns one with random weights and random BatchNorm running
statistics (so inference-mode BatchNorm is exercised), in eval mode.
"""

import types

import torch
from torch import nn

VGG_LAYERS = {
    "vgg11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "vgg16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"),
}
RESNET_BLOCKS = {"resnet18": (False, (2, 2, 2, 2)), "resnet34": (False, (3, 4, 6, 3)),
                 "resnet50": (True, (3, 4, 6, 3))}


def head(kind: str, in_features: int, num_classes: int) -> nn.Module:
  if kind == "linear":
    return nn.Linear(in_features, num_classes)
  return nn.Sequential(nn.Dropout(0.5), nn.Linear(in_features, 64), nn.ReLU(),
                       nn.Dropout(0.5), nn.Linear(64, num_classes))


class BasicBlock(nn.Module):
  expansion = 1

  def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.relu = nn.ReLU()
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.downsample = downsample

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.bn2(self.conv2(out))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


class Bottleneck(nn.Module):
  expansion = 4

  def __init__(self, inplanes: int, planes: int, stride: int, downsample: nn.Module | None):
    super().__init__()
    self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
    self.bn3 = nn.BatchNorm2d(planes * 4)
    self.relu = nn.ReLU()
    self.downsample = downsample

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    out = self.relu(self.bn1(self.conv1(x)))
    out = self.relu(self.bn2(self.conv2(out)))
    out = self.bn3(self.conv3(out))
    identity = x if self.downsample is None else self.downsample(x)
    return self.relu(out + identity)


class ResNet(nn.Module):

  def __init__(self, bottleneck: bool, stage_sizes: tuple[int, ...], num_classes: int,
               head_kind: str):
    super().__init__()
    block = Bottleneck if bottleneck else BasicBlock
    self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.relu = nn.ReLU()
    self.maxpool = nn.MaxPool2d(3, 2, 1)
    inplanes = 64
    for i, size in enumerate(stage_sizes):
      planes = 64 * 2**i
      blocks = []
      for j in range(size):
        stride = 2 if i > 0 and j == 0 else 1
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
          downsample = nn.Sequential(
              nn.Conv2d(inplanes, planes * block.expansion, 1, stride, bias=False),
              nn.BatchNorm2d(planes * block.expansion))
        blocks.append(block(inplanes, planes, stride, downsample))
        inplanes = planes * block.expansion
      setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.fc = head(head_kind, inplanes, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG(nn.Module):

  def __init__(self, layers: tuple[int | str, ...], batch_norm: bool, num_classes: int,
               head_kind: str):
    super().__init__()
    modules: list[nn.Module] = []
    channels = 3
    for layer in layers:
      if layer == "M":
        modules.append(nn.MaxPool2d(2, 2))
        continue
      modules.append(nn.Conv2d(channels, layer, 3, padding=1))
      if batch_norm:
        modules.append(nn.BatchNorm2d(layer))
      modules.append(nn.ReLU())
      channels = layer
    self.features = nn.Sequential(*modules)
    self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
    self.classifier = nn.Sequential(
        nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5),
        head(head_kind, 4096, num_classes))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


@torch.no_grad()
def randomize(model: nn.Module, seed: int) -> None:
  """Random weights that keep activations O(1), and random BatchNorm statistics."""
  generator = torch.Generator().manual_seed(seed)

  def normal(tensor: torch.Tensor, std: float) -> None:
    tensor.copy_(torch.randn(tensor.shape, generator=generator) * std)

  def uniform(tensor: torch.Tensor, low: float, high: float) -> None:
    tensor.copy_(low + (high - low) * torch.rand(tensor.shape, generator=generator))

  for module in model.modules():
    if isinstance(module, nn.Conv2d):
      normal(module.weight, (2 / module.weight[0].numel()) ** 0.5)
      if module.bias is not None:
        normal(module.bias, 0.1)
    elif isinstance(module, nn.Linear):
      normal(module.weight, module.in_features ** -0.5)
      normal(module.bias, 0.1)
    elif isinstance(module, nn.BatchNorm2d):
      uniform(module.weight, 0.5, 1.5)
      normal(module.bias, 0.2)
      normal(module.running_mean, 0.2)
      uniform(module.running_var, 0.5, 2.0)
      module.num_batches_tracked.fill_(7)
  for module in model.modules():
    if isinstance(module, BasicBlock | Bottleneck):
      # A small residual branch keeps deep ResNets' activations O(1).
      last = module.bn3 if isinstance(module, Bottleneck) else module.bn2
      uniform(last.weight, 0.1, 0.3)
      normal(last.bias, 0.05)


def build(arch: str, *, num_classes: int = 1000, head_kind: str = "linear",
          seed: int = 0) -> nn.Module:
  """torchvision's `arch` with random weights and BatchNorm statistics, in eval mode."""
  # Built on the meta device (torch's own initialisation skipped): `randomize`
  # sets every parameter and buffer.
  with torch.device("meta"):
    if arch in RESNET_BLOCKS:
      bottleneck, stage_sizes = RESNET_BLOCKS[arch]
      model = ResNet(bottleneck, stage_sizes, num_classes, head_kind)
    else:
      model = VGG(VGG_LAYERS[arch.removesuffix("_bn")], arch.endswith("_bn"), num_classes,
                  head_kind)
  model = model.to_empty(device="cpu")
  randomize(model, seed)
  return model.eval()


def _basic_block_with_two_relus(self: BasicBlock, x: torch.Tensor) -> torch.Tensor:
  out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
  return self.relu2(out + (x if self.downsample is None else self.downsample(x)))


def with_one_relu_module_per_call(model: nn.Module) -> nn.Module:
  """`model` (a ResNet of BasicBlocks) with a second ReLU module in each block for its second
  ReLU, the same function: Captum's DeepLIFT keeps one input per module, so a module called
  twice makes it raise."""
  for module in model.modules():
    if isinstance(module, BasicBlock):
      module.relu2 = nn.ReLU()
      module.forward = types.MethodType(_basic_block_with_two_relus, module)
  return model
