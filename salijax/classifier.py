"""The `Classifier` pytree that every method and metric takes.

A Classifier bundles model variables (pytree leaves, traced under `jax.jit`)
with pure functions (static fields):

  apply(variables, images f32[B,H,W,3]) -> logits f32[B,K]
  features(variables, images) -> activations f32[B,h,w,c] at the explained layer
  head(variables, feats, images) -> logits f32[B,K], the rest of the network
      from the explained layer, with `feats` in place of the activations there.
  guided_apply(variables, images) -> logits f32[B,K], the same logits as
      `apply` from the same network with its ReLUs guided
      (`salijax.guided_relu`): its input gradient is guided
      backpropagation's. Optional (None): only the guided methods need it;
      `salijax.models.classifier` and `salijax.wrap` fill it.

`head(v, features(v, x), x) == apply(v, x)`. `salijax.wrap` builds a
Classifier of any JAX model (`salijax.models.classifier`, of a salijax model).
`head` takes the images too, so a layer inside a residual block (whose skip
path does not pass through the layer) still has an exact head; a head of a
sequential model ignores them, and under `jax.jit` the unused computation is
removed.
"""

from collections.abc import Callable
from typing import Any

from flax import struct


@struct.dataclass
class Classifier:
  """Model variables plus pure apply/features/head/guided_apply functions (see module doc)."""

  variables: Any
  apply: Callable[..., Any] = struct.field(pytree_node=False)
  features: Callable[..., Any] | None = struct.field(pytree_node=False, default=None)
  head: Callable[..., Any] | None = struct.field(pytree_node=False, default=None)
  guided_apply: Callable[..., Any] | None = struct.field(pytree_node=False, default=None)

  def logits(self, images):
    """f32[B,H,W,3] in [0, 1] -> f32[B,K]."""
    return self.apply(self.variables, images)
