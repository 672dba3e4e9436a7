"""How torchvision module names map to salijax Flax module paths.

A torchvision name is split at its dots; a numeric component (an index into an
`nn.Sequential`) is joined to the component before it with "_", any other
component starts a new Flax module level:

  torchvision                      Flax path
  "conv1"                          ("conv1",)
  "layer1.0.conv1"                 ("layer1_0", "conv1")
  "layer2.0.downsample.1"          ("layer2_0", "downsample_1")
  "features.16"                    ("features_16",)
  "classifier.6.4"                 ("classifier_6_4",)
  "features.2.1.block.2.fc1"       ("features_2_1", "block_2", "fc1")

In ResNet, VGG and the parameters of EfficientNet and the MobileNets no module
name contains "_" otherwise, so there the map is invertible: a Flax path gives
back its torchvision name by joining the levels with "." and replacing "_"
with "." (`torch_name`). Two parameter-free modules of the mobile networks do
("scale_activation" of a squeeze-excitation, EfficientNet's
"stochastic_depth"): `flax_path` maps them, `torch_name` does not. torchvision's
ViT names contain "_" ("encoder.layers.encoder_layer_0.ln_1" -> ("encoder",
"layers", "encoder_layer_0", "ln_1"); "...mlp.0" -> (..., "mlp_0")):
`flax_path` is one-to-one on each model's names, and the way back is a lookup
among them (`salijax.models.trainable_mask`).
"""

from collections.abc import Iterable, Sequence


def flax_path(torch_name: str) -> tuple[str, ...]:
  """The Flax module path of a torchvision module name (see module doc)."""
  path: list[str] = []
  for component in torch_name.split("."):
    if component.isdigit() and path:
      path[-1] = f"{path[-1]}_{component}"
    else:
      path.append(component)
  return tuple(path)


def torch_name(path: Sequence[str]) -> str:
  """The torchvision module name of a Flax module path of a ResNet or VGG (see module doc)."""
  return ".".join(path).replace("_", ".")


def is_under(name: str, prefix: str) -> bool:
  """Whether module `name` is `prefix` or inside it ("layer4.1" is under "layer4")."""
  return name == prefix or name.startswith(prefix + ".")


def with_ancestors(names: Iterable[str]) -> set[str]:
  """`names` plus every dotted prefix of them ("layer4.1.conv1" adds "layer4.1", "layer4")."""
  result = set()
  for name in names:
    parts = name.split(".")
    result.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
  return result
