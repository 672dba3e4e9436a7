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

No salijax module with parameters has a name containing "_" otherwise, so the
map is invertible on them: a Flax path gives back its torchvision name by
joining the levels with "." and replacing "_" with ".". (Two parameter-free
torchvision modules do: "scale_activation" of a squeeze-excitation and
EfficientNet's "stochastic_depth"; `flax_path` maps them, `torch_name` does not.)
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
  """The torchvision module name of a Flax module path (see module doc)."""
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
