"""Layer-wise relevance propagation (Bach et al., PLoS ONE 2015; Montavon et al. 2019), as
zennit 0.5.1 (Anders et al. 2021) computes it.

The relevance of the target class's output, R = one_hot(c) * y_c (the logit),
is propagated back layer by layer, each layer distributing the relevance of
its outputs over its inputs by a rule (`salijax.methods.lrp_rules`); the map
is the relevance of the image, L = reduce_c(R_input), summed over the colour
channels by default ("sum": a rule that conserves relevance keeps
sum L = y_c up to the biases' share and the stabilisers).
`salijax.methods.lrp_transform` applies the rules to the model's jaxpr, so
any model built from convolutions, dense layers, BatchNorms, ReLUs, pools and
residual sums works (salijax's ResNets and VGGs, `salijax.wrap`ped models of
those layers, e.g. a Flax linen CNN); another operation on an
image-dependent value raises a NotImplementedError naming it.

Composites (zennit's, `composite=`), each with the norm rule at average pools
and residual sums, relevance passed unchanged through activations:

  "epsilon_plus_flat"     (the default) flat on the first layer, z+ on the other
                          convolutions, epsilon on the dense layers
  "epsilon_gamma_box"     z^B on the first convolution, gamma on the other
                          convolutions, epsilon on the dense layers
  "epsilon_alpha2_beta1"  alpha-beta on every convolution, epsilon on the dense layers

Options, zennit's defaults: epsilon=1e-6 (the epsilon rule), stabilizer=1e-6
(every other rule's), gamma=0.25, alpha=2, beta=1 (the alpha-beta composite;
alpha - beta = 1), low=0, high=1 (the box rule's bounds, in pixels).

salijax's models normalise inside, (x - mean) / std; the relevance passes
through that normalisation unchanged, so a pixel's relevance is that of its
normalised value (zennit's relevance of a model fed normalised images), and
the box rule's bounds are the first layer's input on images of all `low` and
all `high` pixels: (low - mean) / std and (high - mean) / std per channel
(zennit's ZBox is given bounds in its first layer's input space).

Cost: one forward pass and one backward pass whose rules run extra
convolutions: about 3 gradient passes (epsilon_plus_flat) or 5 (the others),
`GRADIENT_PASSES`.

    maps = lrp(clf, images, labels)                              # f32[B,H,W]
    relevance = lrp(clf, images, labels, composite="epsilon_gamma_box", reduce="none")
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier
from salijax.methods.lrp_rules import AlphaBeta, Box, Epsilon, Flat, Gamma
from salijax.methods.lrp_transform import Composite, first_layer_input, propagating
from salijax.methods.map_ops import REDUCTIONS, reduce_channels
from salijax.methods.registry import Option, PassCount, number, one_of, register

COMPOSITES = ("epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1")
# A map's cost in gradient passes (2 convolutions per layer: forward, input transpose): the
# forward, the rule's products and their transposes per convolution, halved and rounded up
# (z+ 1 + 2 + 2, alpha-beta 1 + 4 + 4, gamma 1 + 5 + 4). `python -m experiments.speed
# --benchmark=methods` on ResNet18, 64 px, batch 8, XLA:CPU: ratios 0.89, 0.92 and 0.91.
GRADIENT_PASSES = {"epsilon_plus_flat": 3, "epsilon_alpha2_beta1": 5, "epsilon_gamma_box": 5}


def composite_rules(composite: str, *, epsilon: float, stabilizer: float, gamma: float,
                    alpha: float, beta: float) -> Composite:
  """The rules of the composite named `composite` (module doc)."""
  dense = Epsilon(epsilon)
  if composite == "epsilon_plus_flat":
    return Composite(conv=AlphaBeta(1.0, 0.0, stabilizer), dense=dense, first=Flat(stabilizer),
                     first_kinds=("conv", "dense"), stabilizer=stabilizer)
  if composite == "epsilon_gamma_box":
    return Composite(conv=Gamma(gamma, stabilizer), dense=dense, first=Box(stabilizer),
                     first_kinds=("conv",), stabilizer=stabilizer)
  if composite == "epsilon_alpha2_beta1":
    return Composite(conv=AlphaBeta(alpha, beta, stabilizer), dense=dense,
                     stabilizer=stabilizer)
  raise ValueError(f"composite must be one of {list(COMPOSITES)}, got {composite!r}")


def relevance(clf: Classifier, images: jax.Array, labels: jax.Array, composite: Composite,
              bounds: Any = None) -> jax.Array:
  """The relevance of every pixel and channel, f32[B,H,W,3], for the output relevance
  one_hot(labels) * logits; `bounds` (low, high) for a box rule (module doc)."""
  if isinstance(composite.first, Box) and bounds is None:
    raise ValueError("bounds: the box rule needs (low, high), the bounds of the first layer's"
                     " input (salijax.methods.lrp_transform.first_layer_input)")
  apply = propagating(clf.apply, composite)
  logits, apply_vjp = jax.vjp(lambda x: apply(clf.variables, x, bounds), images)
  (relevances,) = apply_vjp(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
                            * logits)
  return relevances


@functools.partial(jax.jit, static_argnames=("composite", "epsilon", "stabilizer", "gamma",
                                             "alpha", "beta", "low", "high", "reduce"))
def _lrp(clf: Classifier, images: jax.Array, labels: jax.Array, *, composite: str,
         epsilon: float, stabilizer: float, gamma: float, alpha: float, beta: float, low: float,
         high: float, reduce: str) -> jax.Array:
  rules = composite_rules(composite, epsilon=epsilon, stabilizer=stabilizer, gamma=gamma,
                          alpha=alpha, beta=beta)
  bounds = None
  if isinstance(rules.first, Box):
    at_low, at_high = (first_layer_input(clf.apply, clf.variables, jnp.full_like(images, v),
                                         rules.first_kinds) for v in (low, high))
    bounds = (jnp.minimum(at_low, at_high), jnp.maximum(at_low, at_high))
  return reduce_channels(relevance(clf, images, labels, rules, bounds), reduce)


def _check_alpha_beta(alpha: float, beta: float) -> None:
  if abs(alpha - beta - 1.0) > 1e-9:  # zennit's check, up to the rounding of alpha - beta
    raise ValueError(f"alpha and beta must differ by 1 (alpha - beta = 1), got alpha={alpha!r},"
                     f" beta={beta!r}")


@register("lrp", title="LRP",
          summary="layer-wise relevance propagation of the target logit (zennit's composites)",
          cost=lambda options, shapes: PassCount("gradient", GRADIENT_PASSES[options["composite"]],
                                                 1),
          options={"composite": Option("epsilon_plus_flat", one_of(*COMPOSITES)),
                   "epsilon": Option(1e-6, number(0.0)),
                   "stabilizer": Option(1e-6, number(0.0)),
                   "gamma": Option(0.25, number(0.0)),
                   "alpha": Option(2.0, number(1.0)), "beta": Option(1.0, number(0.0)),
                   "low": Option(0.0, number(0.0, 1.0)), "high": Option(1.0, number(0.0, 1.0)),
                   "reduce": Option("sum", one_of(*REDUCTIONS))},
          jitted=_lrp)
def lrp(clf: Classifier, images: jax.Array, labels: jax.Array, *, composite: str,
        epsilon: float, stabilizer: float, gamma: float, alpha: float, beta: float, low: float,
        high: float, reduce: str) -> jax.Array:
  """LRP maps f32[B,H,W] (relevance f32[B,H,W,3] with reduce="none").

  Options: composite ("epsilon_plus_flat", "epsilon_gamma_box",
  "epsilon_alpha2_beta1"); epsilon, the epsilon rule's stabiliser; stabilizer,
  the other rules'; gamma; alpha, beta (alpha - beta = 1); low < high, the box
  rule's pixel bounds; reduce (module doc).
  """
  _check_alpha_beta(alpha, beta)
  if not low < high:
    raise ValueError(f"low must be below high, got low={low!r}, high={high!r}")
  return _lrp(clf, images, labels, composite=composite, epsilon=epsilon, stabilizer=stabilizer,
              gamma=gamma, alpha=alpha, beta=beta, low=low, high=high, reduce=reduce)
