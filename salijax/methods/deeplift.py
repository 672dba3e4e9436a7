"""DeepLIFT with the rescale rule (Shrikumar, Greenside, Kundaje, ICML 2017) and DeepLIFT-SHAP.

With y_c the target class's logit, I the image and I0 a baseline (reference)
image, DeepLIFT attributes the difference y_c(I) - y_c(I0) to the pixels:

  A = (I - I0) * m,    m = d^rescale y_c / d I                     f32[B,H,W,3]

where m, the multiplier of each pixel and channel, is the chain rule with
every nonlinearity's derivative f'(x) replaced by the rescale multiplier
(f(x) - f(x0)) / (x - x0), x0 the same unit's input on the baseline (f'(x)
where |x - x0| < 1e-10, as Captum does); `salijax.methods.rescale_rule` does
this at the jaxpr level for ReLUs, tanh and sigmoids. Linear operations
(convolutions, inference-mode BatchNorm, average pooling, dense layers) keep
their gradient, so on a network of these and rescaled nonlinearities the
attributions sum to the difference (summation-to-delta):
sum A = y_c(I) - y_c(I0). The map is L = reduce_c(A) (`map_ops`; "max_abs" by
default like the other gradient methods, "sum" the signed total, "none" A).

Max-pooling passes the gradient to each window's maximum (the reference
implementation's, kundajelab/deeplift, mode for max-pooling), so
summation-to-delta does not hold exactly across a max-pool. Captum 0.9.0
registers a cross-maximum rule for `nn.MaxPool2d`, but where the pool's input
is a hooked ReLU's output (every max-pool of torchvision's VGGs and ResNets)
the ReLU's hook reads the gradient before the pool's hook rewrites it, so
Captum's attributions there are the gradient rule's too: salijax equals
Captum on them (tests/methods/deeplift_test.py).

  deeplift       one baseline I0 (`baseline`): "zero" (black, the default),
                 "blur" (the image blurred: 11 x 11 Gaussian taps, sigma 5 px,
                 mirrored borders, as the metrics' "blur" baseline), a value in
                 [0, 1] or an array broadcastable to the images.
  deeplift_shap  DeepLIFT-SHAP (Lundberg & Lee, NeurIPS 2017; Captum's
                 DeepLiftShap): the mean of DeepLIFT's A over N baselines,
                 then reduced. `baselines`: "uniform" (N images of uniform
                 noise in [0, 1), the default), "blur" (the image blurred as
                 above plus Gaussian noise of std `noise`, clipped to [0, 1]),
                 both drawn from `key` and shared by the images of the batch
                 (a map depends only on its image, the key and the options),
                 or an array f32[N,H,W,3] of baselines (the key is then
                 unused). Its sum is y_c(I) - mean_n y_c(I0_n).

Cost: one forward and backward pass of the image and its baseline together
(2 images) per baseline; DeepLIFT-SHAP runs `chunk` baselines per loop step
(memory and speed, not the result).

    maps = deeplift(clf, images, labels)                                 # f32[B,H,W]
    attributions = deeplift(clf, images, labels, baseline="blur", reduce="none")
    maps = deeplift_shap(clf, images, labels, key=jax.random.key(0), num_baselines=16)
"""

import functools
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.gaussian_blur import gaussian_blur
from salijax.methods.integrated_gradients import _check_baseline
from salijax.methods.map_ops import REDUCE_OPTION, reduce_channels
from salijax.methods.registry import (
    Option,
    PassCount,
    Shapes,
    number,
    positive_int,
    register,
)
from salijax.methods.rescale_rule import rescaled
from salijax.wrapping.conv_transposes import explicit_kernel_transposes

BASELINE_NAMES = ("zero", "blur")
DRAWN_BASELINES = ("uniform", "blur")
BLUR_SIZE, BLUR_SIGMA = 11, 5.0  # salijax.metrics.baselines' "blur"


def blurred(images: jax.Array) -> jax.Array:
  """f32[...,H,W,3] -> the "blur" baseline (module doc)."""
  return gaussian_blur(images, BLUR_SIZE, BLUR_SIGMA, padding="reflect")


def deeplift_attributions(clf: Classifier, images: jax.Array, labels: jax.Array,
                          baselines: jax.Array) -> jax.Array:
  """A = (I - I0) * m: f32[B,H,W,3], i32[B], f32[B,H,W,3] -> f32[B,H,W,3] (module doc).

  Vmapped image by image, so that the convolutions run on the pairs image-major
  ([I_1, I0_1, I_2, I0_2, ...]): a batch split over devices stays split (the
  stream-major stack of the whole batch, [I; I0], is not a tile of it).
  """
  apply = explicit_kernel_transposes(rescaled(clf.apply))  # faster in XLA:CPU loops

  def one(image: jax.Array, baseline: jax.Array, label: jax.Array) -> jax.Array:
    logits, apply_vjp = jax.vjp(lambda x: apply(clf.variables, x[None], baseline[None])[0],
                                image)
    (multipliers,) = apply_vjp(jax.nn.one_hot(label, logits.shape[-1], dtype=logits.dtype))
    return (image - baseline) * multipliers

  return jax.vmap(one)(images, baselines, labels)


@functools.partial(jax.jit, static_argnames=("reduce",))
def _deeplift(clf: Classifier, images: jax.Array, labels: jax.Array, baselines: jax.Array, *,
              reduce: str) -> jax.Array:
  return reduce_channels(deeplift_attributions(clf, images, labels, baselines), reduce)


def _check_baseline_option(baseline: Any, name: str) -> Any:
  if isinstance(baseline, str) and baseline not in BASELINE_NAMES:
    raise ValueError(f"{name} must be one of {list(BASELINE_NAMES)}, a value in [0, 1] or an"
                     f" array broadcastable to the images, got {baseline!r}")
  return baseline


@register("deeplift", title="DeepLIFT",
          summary="the rescale rule's multipliers times the difference from a baseline",
          cost=lambda options, shapes: PassCount("gradient", 2, 2),
          options={"baseline": Option("zero", _check_baseline_option), "reduce": REDUCE_OPTION},
          jitted=_deeplift)
def deeplift(clf: Classifier, images: jax.Array, labels: jax.Array, *, baseline: Any,
             reduce: str) -> jax.Array:
  """DeepLIFT (rescale) maps f32[B,H,W] (attributions f32[B,H,W,3] with reduce="none").

  Options: baseline, the reference I0 ("zero", "blur", a value in [0, 1] or an
  array broadcastable to the images); reduce (module doc).
  """
  if isinstance(baseline, str):
    baselines = jnp.zeros_like(images) if baseline == "zero" else blurred(images)
  else:
    _check_baseline(baseline, images)
    baselines = jnp.broadcast_to(jnp.asarray(baseline, jnp.float32), images.shape)
  return _deeplift(clf, images, labels, baselines, reduce=reduce)


@functools.partial(jax.jit, static_argnames=("chunk", "reduce"))
def _deeplift_shap(clf: Classifier, images: jax.Array, labels: jax.Array,
                   baselines: jax.Array, weights: jax.Array, *, chunk: int,
                   reduce: str) -> jax.Array:
  """The jitted DeepLIFT-SHAP.

  Args:
    clf, images f32[B,H,W,3], labels i32[B]: as `deeplift_shap`.
    baselines: f32[B or 1, num_chunks * chunk, H, W, 3], each image's baselines (one set
      for all images when the first axis is 1), padded.
    weights: f32[num_chunks * chunk], 1/N per baseline, 0 for the padding.
  """
  batch, height, width, _ = images.shape
  num_chunks = weights.shape[0] // chunk
  copies = jnp.repeat(images, chunk, axis=0)  # image-major: [B * chunk, H, W, 3]
  copy_labels = jnp.repeat(labels, chunk)

  def add_chunk(step: jax.Array, total: jax.Array) -> jax.Array:
    part = jax.lax.dynamic_slice_in_dim(baselines, step * chunk, chunk, axis=1)
    part = jnp.broadcast_to(part, (batch, chunk, height, width, 3))
    attributions = deeplift_attributions(
        clf, copies, copy_labels, part.reshape(batch * chunk, height, width, 3))
    return total + jnp.einsum(
        "bkhwc,k->bhwc", attributions.reshape(batch, chunk, height, width, 3),
        jax.lax.dynamic_slice_in_dim(weights, step * chunk, chunk),
        precision=jax.lax.Precision.HIGHEST)

  # Unrolled (up to 8 chunks), as integrated_gradients.
  total = jax.lax.fori_loop(0, num_chunks, add_chunk, jnp.zeros_like(images),
                            unroll=min(num_chunks, 8))
  return reduce_channels(total, reduce)


def draw_baselines(images: jax.Array, key: jax.Array, kind: str, num_baselines: int,
                   noise: float) -> jax.Array:
  """The drawn baselines (module doc): f32[B,H,W,3] -> f32[1 or B,N,H,W,3].

  Baseline n's noise comes from `jax.random.fold_in(key, n)`, shaped [H,W,3] and shared by
  the images, so a baseline does not depend on N, the chunk or the batch.
  """
  _, height, width, _ = images.shape
  index = jnp.arange(num_baselines)
  if kind == "uniform":
    draw = jax.vmap(lambda n: jax.random.uniform(jax.random.fold_in(key, n), (height, width, 3)))
    return draw(index)[None]
  draw = jax.vmap(lambda n: jax.random.normal(jax.random.fold_in(key, n), (height, width, 3)))
  return jnp.clip(blurred(images)[:, None] + noise * draw(index)[None], 0.0, 1.0)


def _check_baselines_option(baselines: Any, name: str) -> Any:
  if isinstance(baselines, str):
    if baselines not in DRAWN_BASELINES:
      raise ValueError(f"{name} must be one of {list(DRAWN_BASELINES)} or an array"
                       f" f32[N,H,W,3] of baselines in [0, 1], got {baselines!r}")
  elif not isinstance(baselines, (np.ndarray, jax.Array)):
    raise TypeError(f"{name}: expected one of {list(DRAWN_BASELINES)} or an array"
                    f" f32[N,H,W,3], got {type(baselines).__name__}")
  return baselines


def _shap_cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """One gradient pass of the pair (image, baseline) per baseline, `chunk` pairs per step."""
  del shapes
  baselines = options["baselines"]
  count = (options["num_baselines"] if isinstance(baselines, str)
           else int(np.shape(baselines)[0]))
  return PassCount("gradient", 2 * count, 2 * min(options["chunk"], count))


@register("deeplift_shap", title="DeepLIFT-SHAP",
          summary="DeepLIFT averaged over a set of baselines", cost=_shap_cost,
          options={"baselines": Option("uniform", _check_baselines_option),
                   "num_baselines": Option(16, positive_int), "noise": Option(0.1, number(0.0)),
                   "chunk": Option(4, positive_int), "reduce": REDUCE_OPTION},
          needs_key=True, jitted=_deeplift_shap)
def deeplift_shap(clf: Classifier, images: jax.Array, labels: jax.Array, key: jax.Array, *,
                  baselines: Any, num_baselines: int, noise: float, chunk: int,
                  reduce: str) -> jax.Array:
  """DeepLIFT-SHAP maps f32[B,H,W] (mean attributions f32[B,H,W,3] with reduce="none").

  Options: baselines ("uniform", "blur" or an array f32[N,H,W,3] in [0, 1]);
  num_baselines, N of the drawn ones; noise, the std of the noise added to the
  blurred image ("blur"); chunk, baselines per loop step; reduce (module doc).
  """
  if isinstance(baselines, str):
    base = draw_baselines(images, key, baselines, num_baselines, noise)
  else:
    shape = tuple(np.shape(baselines))
    if len(shape) != 4 or shape[1:] != tuple(images.shape[1:]) or shape[0] < 1:
      raise ValueError(f"baselines: expected an array f32[N,H,W,3] of images shaped like"
                       f" {tuple(images.shape[1:])}, got shape {shape}")
    _check_baseline(baselines, jax.ShapeDtypeStruct(shape, jnp.float32))
    base = jnp.asarray(baselines, jnp.float32)[None]
  count = base.shape[1]
  chunk = min(chunk, count)
  padded = math.ceil(count / chunk) * chunk
  base = jnp.pad(base, ((0, 0), (0, padded - count), (0, 0), (0, 0), (0, 0)))
  weights = jnp.asarray(np.arange(padded) < count, jnp.float32) / count
  return _deeplift_shap(clf, images, labels, base, weights, chunk=chunk, reduce=reduce)
