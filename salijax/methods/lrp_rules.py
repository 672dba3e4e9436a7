"""LRP's rules for one affine layer, as zennit 0.5.1 defines them.

A layer is y = s * L(x; W) + t: L linear in its input x (a convolution or a
dense product with weights W), s and t the scale and shift of the elementwise
affine operations after it (its bias, an inference-mode BatchNorm: zennit's
`SequentialMergeBatchNorm` folds these into the layer's weights, W' = s W and
bias t). With ^+ / ^- the positive / negative parts and R the relevance of
the outputs, each rule gives the relevance of the inputs (the sums run over the
outputs j that input i reaches; a linear map's transpose does them):

  epsilon      R_i = x_i sum_j W'_ji R_j / stab(z_j, epsilon),  z = W' x + t
  z+           R_i = x+_i sum_j W'+_ji R_j / stab(z+_j) + x-_i sum_j W'-_ji R_j / stab(z+_j),
               z+ = W'+ x+ + W'- x- + t+  (zennit's ZPlus, alpha-beta with alpha=1, beta=0)
  alpha-beta   R = alpha (x+ W'+^T + x- W'-^T) R / stab(z+)
                   - beta (x+ W'-^T + x- W'+^T) R / stab(z-),   z- = W'- x+ + W'+ x- + t-
  gamma        (generalised, Andeol et al. 2021) the weights W' + gamma W'+ carry the
               relevance of outputs with z > 0 (on x+; W' + gamma W'- on x-), the weights
               W' + gamma W'- that of outputs with z < 0 (W' + gamma W'+ on x-); biases
               t + gamma t+ / t + gamma t- on the x+ terms, none on the x- terms
  flat         R_i = sum_j R_j / stab(n_j): all weights and inputs one, no bias (n_j, the
               number of inputs of output j)
  z^B (box)    R_i = sum_j (x_i W'_ji - l_i W'+_ji - h_i W'-_ji) R_j / stab(z_j - z^l_j - z^h_j)
               with l <= x <= h the bounds of the inputs, z^l = W'+ l + t+, z^h = W'- h + t-
  norm         R_i = x_i sum_j A_ji R_j / stab(y_j), y = A x, for a map without
               parameters (average pooling, the residual sum): zennit's `Norm`

stab(z, e) = z + e sign(z) with sign(0) = +1 (zennit's `Stabilizer`); e is the
rule's `stabilizer` (epsilon for the epsilon rule). Each rule is zennit's
(`zennit.rules`, whose outputs and weights these are); the formulas are
Bach et al. (PLoS ONE 2015) and Montavon et al. ("Layer-wise relevance
propagation: an overview", 2019).
"""

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def stabilize(z: jax.Array, epsilon: float) -> jax.Array:
  """z + epsilon sign(z), sign(0) = +1 (zennit's Stabilizer)."""
  return z + epsilon * jnp.where(z >= 0, 1.0, -1.0).astype(z.dtype)


def _positive(a: jax.Array) -> jax.Array:
  return jnp.maximum(a, 0)


def _negative(a: jax.Array) -> jax.Array:
  return jnp.minimum(a, 0)


@dataclasses.dataclass(frozen=True)
class AffineLayer:
  """y = scale * linear(x, weight) + shift (module doc); `linear` is linear in x for any
  weights shaped like `weight`; scale (an array or a Python float) and shift broadcast to
  y."""

  linear: Callable[[jax.Array, jax.Array], jax.Array]
  weight: jax.Array
  scale: jax.Array | float
  shift: jax.Array

  def _terms(self, part: str, gamma: float = 0.0) -> tuple[tuple[Any, jax.Array], ...]:
    """(output factor, weights) pairs whose sum is the map x -> W'^part x, W' = scale W, or
    with gamma > 0 x -> (W' + gamma W'^part) x."""
    s, w = self.scale, self.weight
    if gamma:
      if isinstance(s, float):  # one product with the boosted weights
        merged = s * w
        clamped = _positive(merged) if part == "+" else _negative(merged)
        return ((1.0, merged + gamma * clamped),)
      return self._terms("all") + tuple((gamma * f, v) for f, v in self._terms(part))
    if part == "all":
      return ((s, w),)
    pos, neg = _positive(w), _negative(w)
    if isinstance(s, float):  # a known sign: one product, not two
      return ((s, pos if (s > 0) == (part == "+") else neg),)
    if part == "+":  # (s W)+ = s+ W+ + s- W-
      return ((_positive(s), pos), (_negative(s), neg))
    return ((_positive(s), neg), (_negative(s), pos))  # "-"

  def map(self, part: str, x: jax.Array, gamma: float = 0.0) -> jax.Array:
    """W'^part x, part "all", "+" or "-" (no bias); (W' + gamma W'^part) x with gamma."""
    return sum(factor * self.linear(x, w) for factor, w in self._terms(part, gamma))

  def transpose(self, part: str, x: jax.Array, g: jax.Array, gamma: float = 0.0) -> jax.Array:
    """(W'^part)^T g, shaped like x; (W' + gamma W'^part)^T g with gamma."""
    total = jnp.zeros_like(x)
    for factor, w in self._terms(part, gamma):
      _, pullback = jax.vjp(lambda v, w=w: self.linear(v, w), x)
      total = total + pullback(factor * g)[0]
    return total

  def bias(self, part: str) -> jax.Array:
    """t, t+ or t-."""
    return {"all": self.shift, "+": _positive(self.shift), "-": _negative(self.shift)}[part]


@dataclasses.dataclass(frozen=True)
class Epsilon:
  """The epsilon rule (zennit's default epsilon 1e-6)."""

  epsilon: float = 1e-6

  def relevance(self, layer: AffineLayer, x: jax.Array, r: jax.Array, bounds: Any) -> jax.Array:
    del bounds
    z = layer.map("all", x) + layer.bias("all")
    return x * layer.transpose("all", x, r / stabilize(z, self.epsilon))


@dataclasses.dataclass(frozen=True)
class AlphaBeta:
  """The alpha-beta rule; alpha=1, beta=0 is z+ (zennit's ZPlus)."""

  alpha: float = 2.0
  beta: float = 1.0
  stabilizer: float = 1e-6

  def relevance(self, layer: AffineLayer, x: jax.Array, r: jax.Array, bounds: Any) -> jax.Array:
    del bounds
    xp, xn = _positive(x), _negative(x)
    z_pos = layer.map("+", xp) + layer.bias("+") + layer.map("-", xn)
    g_pos = r / stabilize(z_pos, self.stabilizer)
    total = self.alpha * (xp * layer.transpose("+", x, g_pos) + xn * layer.transpose("-", x, g_pos))
    if self.beta == 0:
      return total
    z_neg = layer.map("-", xp) + layer.bias("-") + layer.map("+", xn)
    g_neg = r / stabilize(z_neg, self.stabilizer)
    return total - self.beta * (xp * layer.transpose("-", x, g_neg)
                                + xn * layer.transpose("+", x, g_neg))


@dataclasses.dataclass(frozen=True)
class Gamma:
  """The generalised gamma rule (zennit's default gamma 0.25)."""

  gamma: float = 0.25
  stabilizer: float = 1e-6

  def relevance(self, layer: AffineLayer, x: jax.Array, r: jax.Array, bounds: Any) -> jax.Array:
    del bounds
    xp, xn = _positive(x), _negative(x)
    gamma = self.gamma
    z = layer.map("all", x) + layer.bias("all")

    def boosted(part: str, v: jax.Array) -> jax.Array:  # (W' + gamma W'^part) v
      return layer.map(part, v, gamma)

    def boosted_t(part: str, g: jax.Array) -> jax.Array:  # (W' + gamma W'^part)^T g
      return layer.transpose(part, x, g, gamma)

    bias = layer.bias("all")
    z_up = boosted("+", xp) + bias + gamma * layer.bias("+") + boosted("-", xn)
    z_down = boosted("-", xp) + bias + gamma * layer.bias("-") + boosted("+", xn)
    g_up = jnp.where(z > 0, r, 0) / stabilize(z_up, self.stabilizer)
    g_down = jnp.where(z < 0, r, 0) / stabilize(z_down, self.stabilizer)
    return (xp * boosted_t("+", g_up) + xn * boosted_t("-", g_up)
            + xp * boosted_t("-", g_down) + xn * boosted_t("+", g_down))


@dataclasses.dataclass(frozen=True)
class Flat:
  """The flat rule: all weights and inputs one, no bias."""

  stabilizer: float = 1e-6

  def relevance(self, layer: AffineLayer, x: jax.Array, r: jax.Array, bounds: Any) -> jax.Array:
    del bounds
    ones = jnp.ones_like(x)
    weights = jnp.ones_like(layer.weight)
    counts, pullback = jax.vjp(lambda v: layer.linear(v, weights), ones)
    return pullback(r / stabilize(counts, self.stabilizer))[0]


@dataclasses.dataclass(frozen=True)
class Box:
  """The z^B rule; `bounds` = (low, high), the inputs' bounds, broadcastable to x."""

  stabilizer: float = 1e-6

  def relevance(self, layer: AffineLayer, x: jax.Array, r: jax.Array, bounds: Any) -> jax.Array:
    low, high = (jnp.broadcast_to(b, x.shape).astype(x.dtype) for b in bounds)
    z = (layer.map("all", x) + layer.bias("all") - layer.map("+", low) - layer.bias("+")
         - layer.map("-", high) - layer.bias("-"))
    g = r / stabilize(z, self.stabilizer)
    return (x * layer.transpose("all", x, g) - low * layer.transpose("+", x, g)
            - high * layer.transpose("-", x, g))


def norm_relevance(linear_map: Callable[[jax.Array], jax.Array], x: jax.Array, r: jax.Array,
                   stabilizer: float) -> jax.Array:
  """The norm rule for y = linear_map(x) (affine, no parameters): x * A^T (r / stab(y))."""
  y, pullback = jax.vjp(linear_map, x)
  return x * pullback(r / stabilize(y, stabilizer))[0]


Rule = Epsilon | AlphaBeta | Gamma | Flat | Box
