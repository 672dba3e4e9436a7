"""SIDU: similarity difference and uniqueness (Muddamsetty et al., ICIP 2020; PR 2022).

`sidu`, the paper's method. With A = clf.features(I) f32[h,w,k] (the explained
layer, e.g. the last conv block), B_j = 1[A_j > tau], M_j = up(B_j) f32[H,W]
(bilinear, half-pixel centres), P = softmax(f(I)), P_j = softmax(f(I * M_j))
and c the target class:

  SD_j = exp(-(P_c - P_{j,c})^2 / (2 sigma^2))            similarity difference
  U_j  = sum_i |P_j - P_i|_2, min-max normalised over j   uniqueness; when all
         U_j are equal (e.g. k = 1) they carry no information and U_j = 1
  L    = (1/k) sum_j SD_j U_j M_j = up((1/k) sum_j SD_j U_j B_j)  (up is linear)

k + 1 forwards: a compiled loop over chunks of `chunk` channels forwards
B * chunk masked images per step and keeps only P_j f32[B,k,K]; the weighted
sum is upsampled once at the end.

`sidu_feature_space`, the computation of the `pytorch-sidu` package (seed
parity only): class-agnostic, see its docstring.

    maps = sidu(clf, images, labels)   # f32[B,H,W]
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.methods.map_ops import upsample_bilinear
from salijax.methods.registry import (
    Option,
    channels_plus_one,
    chunked,
    number,
    positive_int,
    register,
)

_HIGHEST = jax.lax.Precision.HIGHEST
_UNIQUENESS_ROWS = 16  # rows of the k x k distance matrix computed at once


def _channel_chunks(binary: jax.Array, chunk: int) -> jax.Array:
  """f32[B,h,w,k] -> f32[ceil(k/chunk), B, chunk, h, w], channels zero-padded."""
  batch, height, width, channels = binary.shape
  steps = math.ceil(channels / chunk)
  padded = jnp.pad(binary, ((0, 0), (0, 0), (0, 0), (0, steps * chunk - channels)))
  return jnp.moveaxis(padded, 3, 1).reshape(batch, steps, chunk, height, width).swapaxes(0, 1)


def _masked(images: jax.Array, masks: jax.Array) -> jax.Array:
  """f32[B,H,W,3] times masks f32[B,n,H,W] -> f32[B*n,H,W,3]."""
  batch, n, height, width = masks.shape
  return (images[:, None] * masks[..., None]).reshape(batch * n, height, width, 3)


def _uniqueness(probs: jax.Array) -> jax.Array:
  """f32[B,k,K] -> f32[B,k], sum_i |P_j - P_i|_2, min-max normalised over j (1 if flat)."""
  def row(j):
    return jnp.linalg.norm(probs[:, j, None, :] - probs, axis=-1).sum(axis=-1)  # f32[B]

  total = jax.lax.map(row, jnp.arange(probs.shape[1]), batch_size=_UNIQUENESS_ROWS).T
  low = total.min(axis=1, keepdims=True)
  high = total.max(axis=1, keepdims=True)
  return jnp.where(high > low, (total - low) / jnp.where(high > low, high - low, 1.0), 1.0)


@register("sidu", title="SIDU",
          summary="feature masks weighted by similarity difference and uniqueness",
          cost=channels_plus_one, needs_layer="features",
          options={"tau": Option(0.5, number()), "sigma": Option(0.25, number(0.0, low_open=True)),
                   "chunk": Option(64, positive_int)})
@functools.partial(jax.jit, static_argnames=("tau", "sigma", "chunk"))
def sidu(clf: Classifier, images: jax.Array, labels: jax.Array, *, tau: float, sigma: float,
         chunk: int) -> jax.Array:
  """SIDU maps f32[B,H,W] >= 0, the paper's definition (module doc)."""
  batch, height, width, _ = images.shape
  binary = (clf.features(clf.variables, images) > tau).astype(jnp.float32)  # f32[B,h,w,k]
  channels = binary.shape[-1]
  chunk = min(chunk, channels)
  probs = jax.nn.softmax(clf.logits(images), axis=-1)  # f32[B,K]

  def masked_probs(_, bits):
    masks = upsample_bilinear(bits, height, width)  # f32[B,n,H,W]
    logits = clf.logits(_masked(images, masks))
    return None, jax.nn.softmax(logits, axis=-1).reshape(batch, chunk, -1)

  _, masked = jax.lax.scan(masked_probs, None, _channel_chunks(binary, chunk))
  masked = jnp.moveaxis(masked, 0, 1).reshape(batch, -1, probs.shape[-1])[:, :channels]

  target = jnp.take_along_axis(probs, labels[:, None], axis=1)  # f32[B,1]
  masked_target = jnp.take_along_axis(masked, labels[:, None, None], axis=2)[..., 0]  # f32[B,k]
  similarity = jnp.exp(-(target - masked_target) ** 2 / (2 * sigma ** 2))
  weights = similarity * _uniqueness(masked) / channels
  low = jnp.einsum("bk,bhwk->bhw", weights, binary, precision=_HIGHEST)
  return upsample_bilinear(low, height, width)


def _align_corners_matrix(size_in: int, size_out: int) -> np.ndarray:
  """f32[size_out, size_in]: linear interpolation, corners aligned (torch align_corners=True)."""
  scale = (size_in - 1) / (size_out - 1) if size_out > 1 else 0.0
  position = np.arange(size_out) * scale
  lower = np.minimum(np.floor(position).astype(int), size_in - 1)
  upper = np.minimum(lower + 1, size_in - 1)
  fraction = position - lower
  matrix = np.zeros((size_out, size_in), np.float64)
  np.add.at(matrix, (np.arange(size_out), lower), 1.0 - fraction)
  np.add.at(matrix, (np.arange(size_out), upper), fraction)
  return matrix.astype(np.float32)


def _upsample_align_corners(maps: jax.Array, height: int, width: int) -> jax.Array:
  """f32[..., h, w] -> f32[..., H, W], bilinear with corners aligned (pytorch-sidu's masks)."""
  rows = _align_corners_matrix(maps.shape[-2], height)
  cols = _align_corners_matrix(maps.shape[-1], width)
  return jnp.einsum("Yy,...yx,Xx->...YX", rows, maps, cols, precision=_HIGHEST)


def _channel_distance(feats: jax.Array) -> jax.Array:
  """f32[N,h,w,c] -> f32[N], mean over channel pairs (i, j) of |F_i - F_j|_2 over (h, w)."""
  flat = feats.reshape(feats.shape[0], -1, feats.shape[-1])  # f32[N,hw,c]
  gram = jnp.einsum("npi,npj->nij", flat, flat, precision=_HIGHEST)
  norms = jnp.diagonal(gram, axis1=1, axis2=2)
  squared = norms[:, :, None] + norms[:, None, :] - 2.0 * gram
  off_diagonal = ~jnp.eye(feats.shape[-1], dtype=bool)
  return jnp.where(off_diagonal, jnp.sqrt(jnp.maximum(squared, 0.0)), 0.0).mean(axis=(1, 2))


@register("sidu_feature_space", title="SIDU (feature space)",
          summary="pytorch-sidu's class-agnostic SIDU, for seed parity",
          cost=lambda options, shapes: chunked("forward", shapes.channels, options["chunk"]),
          needs_layer="features", uses_labels=False,
          options={"tau": Option(0.15, number()), "sigma": Option(0.1, number(0.0, low_open=True)),
                   "chunk": Option(64, positive_int)})
@functools.partial(jax.jit, static_argnames=("tau", "sigma", "chunk"))
def sidu_feature_space(clf: Classifier, images: jax.Array, labels: jax.Array, *, tau: float,
                       sigma: float, chunk: int) -> jax.Array:
  """SIDU as the `pytorch-sidu` package computes it: CLASS-AGNOSTIC, kept for seed parity.

  This variant IGNORES `labels` (they are only validated): it compares
  activations, not class scores, so every class of an image gets the same map.
  Use `sidu` for the paper's method. With F = clf.features(I) f32[h,w,c],
  masks M_j = up(1[F_j > tau]) (bilinear with corners aligned, as the
  package's `interpolate(align_corners=True)`) and F^j = clf.features(I * M_j):

    SD_j = mean over (y, x) of exp(-(mean over channels |F^j - F|)^2 / (2 sigma^2))
    U_j  = mean over channel pairs (a, b) of |F^j_a - F^j_b|_2 (over (y, x));
           no normalisation
    L    = (1/c) sum_j SD_j U_j M_j

  c forwards up to the explained layer, chunked as in `sidu`. The package's
  own kernel width is 0.25 (its `kernel(d) = sqrt(exp(-d^2 / 0.25^2))`); the
  default 0.1 is the width of the benchmark this variant reproduces; pass
  sigma=0.25 to match the package as published.
  """
  del labels
  batch, height, width, _ = images.shape
  feats = clf.features(clf.variables, images)  # f32[B,h,w,c]
  binary = (feats > tau).astype(jnp.float32)
  channels = feats.shape[-1]
  chunk = min(chunk, channels)

  def mask_weights(_, bits):
    masks = _upsample_align_corners(bits, height, width)  # f32[B,n,H,W]
    masked = clf.features(clf.variables, _masked(images, masks))
    masked = masked.reshape((batch, chunk) + feats.shape[1:])  # f32[B,n,h,w,c]
    difference = jnp.abs(masked - feats[:, None]).mean(axis=-1)  # f32[B,n,h,w]
    similarity = jnp.exp(-difference ** 2 / (2 * sigma ** 2)).mean(axis=(2, 3))
    uniqueness = _channel_distance(masked.reshape((batch * chunk,) + feats.shape[1:]))
    return None, similarity * uniqueness.reshape(batch, chunk)

  _, weights = jax.lax.scan(mask_weights, None, _channel_chunks(binary, chunk))
  weights = jnp.moveaxis(weights, 0, 1).reshape(batch, -1)[:, :channels] / channels
  low = jnp.einsum("bk,bhwk->bhw", weights, binary, precision=_HIGHEST)
  return _upsample_align_corners(low, height, width)
