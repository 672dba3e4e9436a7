"""The replaceable last layer (the "head") of the salijax models.

- "linear": torchvision's own last layer, `Linear(in, num_classes)`.
- "mlp": `Sequential(Dropout(0.5), Linear(in, 64), ReLU, Dropout(0.5),
  Linear(64, num_classes))` in its place; in torch its parameters are
  `<head>.1.*` and `<head>.4.*`, in Flax modules `<head>_1` and `<head>_4`.

The head's torchvision name (its prefix) is "fc" in a ResNet,
"classifier.6" in a VGG and "heads.head" in a Vision Transformer. Its Dense
layers sit directly in the model (Flax paths "fc", "fc_1", "classifier_6",
...), or in the container module of a ViT (`HeadContainer`, "heads/head",
"heads/head_1", ...). Biases start at zero.
"""

import dataclasses
import functools
from collections.abc import Callable

import flax.linen as nn
import jax

from salijax.models import naming

HEADS = ("linear", "mlp")
MLP_HIDDEN = 64
MLP_DROPOUT = 0.5


@dataclasses.dataclass(frozen=True)
class HeadSpec:
  """What a model's head is.

  Attributes:
    kind: one of `HEADS`.
    num_classes: the number of logits.
    prefix: the head's torchvision name, "fc" or "classifier.6".
    kernel_init: the initialiser of its Dense kernels.
  """

  kind: str
  num_classes: int
  prefix: str
  kernel_init: Callable[..., jax.Array]

  def layers(self) -> tuple[str, ...]:
    """The torchvision names of the head's Linear layers, e.g. ("fc.1", "fc.4")."""
    return (self.prefix,) if self.kind == "linear" else (f"{self.prefix}.1", f"{self.prefix}.4")


def classification_head(x: jax.Array, spec: HeadSpec, train: bool,
                        relu: Callable[[jax.Array], jax.Array] = nn.relu) -> jax.Array:
  """f32[B,D] features -> f32[B,num_classes] logits; call inside a compact method.

  `train` enables the mlp's dropout (rng collection "dropout"); `relu` is the
  mlp's activation (the model's, e.g. the guided ReLU).
  """
  if spec.kind not in HEADS:
    raise ValueError(f"head: expected one of {HEADS}, got {spec.kind!r}")
  dense = functools.partial(nn.Dense, kernel_init=spec.kernel_init,
                            bias_init=nn.initializers.zeros)
  names = [naming.flax_path(layer)[-1] for layer in spec.layers()]
  if spec.kind == "linear":
    return dense(spec.num_classes, name=names[0])(x)
  x = nn.Dropout(MLP_DROPOUT, deterministic=not train)(x)
  x = relu(dense(MLP_HIDDEN, name=names[0])(x))
  x = nn.Dropout(MLP_DROPOUT, deterministic=not train)(x)
  return dense(spec.num_classes, name=names[1])(x)


class HeadContainer(nn.Module):
  """The head in a module of its own (a ViT's "heads" Sequential):
  `__call__(x f32[B,D], train=False) -> f32[B,K]`."""

  spec: HeadSpec

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    return classification_head(x, self.spec, train)


class StandaloneHead(nn.Module):
  """A model's head on its own: `__call__(x f32[B,D], train=False) -> f32[B,K]`.

  Its layers have the Flax paths they have in the model (in a `HeadContainer`
  where the prefix has two levels, "heads.head"), and Flax derives each
  layer's random key from its path, so `init(key, x)` draws the same values as
  the head of the whole model's `init` with that key.
  """

  spec: HeadSpec

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    path = naming.flax_path(self.spec.prefix)
    if len(path) == 2:  # "heads.head": one container module
      return HeadContainer(self.spec, name=path[0])(x, train)
    return classification_head(x, self.spec, train)
