"""Shared inputs of the subset/correlation faithfulness tests: a linear classifier with known
answers, random inputs, the twin CNN's scores in numpy, and a Quantus 0.6.0 runner."""

import jax
import jax.numpy as jnp
import numpy as np
import twin_cnn
from float_tolerance import sum_rtol

from salijax.classifier import Classifier

HIGHEST = jax.lax.Precision.HIGHEST


def linear_classifier(weights: np.ndarray) -> Classifier:
  """Logits (w.x, -w.x) of f32[B,H,W,3] images for weights f32[H,W] shared by the channels.

  With the black (0) baseline, removing pixels S drops logit 0 by sum_{p in S} w_p sum_c x_pc:
  the map w_p sum_c x_pc (gradient times input) explains every drop exactly.
  """
  w = jnp.asarray(weights, jnp.float32)

  def apply(v, images):
    value = jnp.einsum("bhwc,hw->b", images, v, precision=HIGHEST)
    return jnp.stack([value, -value], axis=1)

  return Classifier(variables=w, apply=apply)


def random_inputs(seed: int, batch: int, height: int, width: int):
  """Images f32[B,H,W,3] in [0, 1] and maps f32[B,H,W] with distinct values."""
  rng = np.random.default_rng(seed)
  images = rng.random((batch, height, width, 3)).astype(np.float32)
  maps = rng.normal(0.2, 1.0, (batch, height, width)).astype(np.float32)
  return images, maps


def scores(clf: Classifier, images: np.ndarray, labels: np.ndarray, score: str) -> np.ndarray:
  """f64[N] class scores of f32[N,H,W,3] images, one forward each (the slow reference side)."""
  logits = np.stack([np.asarray(clf.logits(jnp.asarray(x[None], jnp.float32)))[0]
                     for x in images]).astype(np.float64)
  if score == "softmax":
    logits = np.exp(logits - logits.max(axis=1, keepdims=True))
    logits /= logits.sum(axis=1, keepdims=True)
  return logits[np.arange(len(images)), labels]


def baseline_value(image: np.ndarray, baseline: str) -> float:
  return {"black": 0.0, "min": float(image.min()), "mean": float(image.mean())}[baseline]


def run_quantus(torch, metric, params, images, maps, labels, logits=None):
  """Quantus's scores of the twin CNN: NCHW images, maps as f32[B,1,H,W], logits.

  logits: a list that receives the torch model's logits f32[B,K] of every forward, in order.
  """
  model = twin_cnn.torch_model(torch, params)
  if logits is not None:
    model.register_forward_hook(lambda m, i, o: logits.append(o.detach().numpy().copy()))
  result = metric(model=model, x_batch=np.ascontiguousarray(images.transpose(0, 3, 1, 2)),
                  y_batch=np.asarray(labels), a_batch=maps[:, None].astype(np.float32),
                  channel_first=True, device="cpu")
  return np.asarray(result)


def quantus_drops(logits, labels) -> np.ndarray:
  """f32[B, J]: Quantus's score drops f(x) - f(x_j) from its recorded forwards (the original
  images first, then one forward per perturbation of the whole batch)."""
  values = np.stack(logits)[:, np.arange(len(labels)), labels]  # [1 + J, B]
  return (values[0][None] - values[1:]).T


def channel_elements(pixels: np.ndarray, num_pixels: int) -> np.ndarray:
  """Pixel indices (flat y W + x) -> the indices of their 3 channel values in a flat C,H,W image
  (Quantus's features)."""
  return np.concatenate([pixels + c * num_pixels for c in range(3)])


def score_error(values) -> float:
  """A bound on the float32 error of one class score of the small test CNNs: a chain of ~300
  roundings (3x3 convolutions of 27 and 72 terms, a mean over <= 144 positions, a dense layer
  of 12 terms) relative to the score's scale."""
  return sum_rtol(300) * (1.0 + float(np.max(np.abs(values))))


def pearson_atol(drops: np.ndarray, error: float) -> float:
  """|r(x, y + d) - r(x, y)| <= 2 |d| / |y - mean(y)| for |d_j| <= error (a perturbation of y
  moves its unit direction by at most twice its relative size), plus float32 rounding of the
  correlation's own sums."""
  drops = np.asarray(drops, np.float64)
  spread = np.linalg.norm(drops - drops.mean(axis=-1, keepdims=True), axis=-1).min()
  return 2 * error * np.sqrt(drops.shape[-1]) / spread + sum_rtol(4 * drops.shape[-1])


TWIN_ERROR = 2e-6  # the twins' logits agree to ~5e-7 (twin_cnn): x4 for margin


def twin_error(logits) -> float:
  """The error of a score drop between salijax and torch on the twin CNN: two logits, each
  within TWIN_ERROR (relative to the scale of the logits) of the other side's."""
  return 2 * TWIN_ERROR * (1.0 + float(np.max(np.abs(logits))))


def pearson_atol_between(drops, other_drops) -> float:
  """The bound of `pearson_atol` for two sides whose drops differ by the observed amount."""
  drops, other = np.asarray(drops, np.float64), np.asarray(other_drops, np.float64)
  spread = np.linalg.norm(drops - drops.mean(axis=-1, keepdims=True), axis=-1)
  bound = 2 * np.linalg.norm(drops - other, axis=-1) / spread
  return float(bound.max()) + sum_rtol(4 * drops.shape[-1])


def first_of_stable_order(draws: np.ndarray, count: int) -> np.ndarray:
  """bool, the shape of `draws`: along the last axis, the first `count` indices of a stable
  argsort (the `count` smallest draws, ties in index order)."""
  ranks = np.argsort(np.argsort(draws, axis=-1, kind="stable"), axis=-1)  # the inverse order
  return ranks < count
