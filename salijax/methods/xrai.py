"""XRAI (Kapishnikov, Bolukbasi, Viegas, Terry, ICCV 2019): regions ranked by attribution.

1. Attribution: integrated gradients of the target logit from two baselines,
   black (0) and white (1) (`baselines="black_white"`, the paper's; PAIR's
   default `"min_max"` takes the image's own min and max over pixels and
   channels), averaged, then the max over the colour channels: a f32[H,W].
   The integral is PAIR's Riemann sum: m = `steps` points a_k = k / (m - 1),
   k = 0..m-1 (both ends), weights 1/m (`IntegratedGradients.GetMask`), run
   by salijax's compiled integrated gradients (`chunk` points per loop step).
2. Segments (on the host, with scikit-image, as PAIR): the image rescaled to
   [-1, 1] by its own min and max and resized to 224 x 224 (cubic,
   antialiased), Felzenszwalb's graph segmentation at scales 50, 100, 150,
   250, 500, 1200 (sigma 0.8, min_size 150), each resized back (nearest),
   every label of every scale a mask, each mask dilated by a disk of radius
   `dilation_radius` (5): overlapping candidate regions bool[M,H,W].
3. Greedy selection (`algorithm="full"`): starting from nothing, repeatedly
   add the region whose NEW pixels have the highest mean attribution, among
   the regions adding at least `min_pixel_diff` (50) new pixels (the others
   are dropped for good), until the selected area exceeds `area_threshold`
   (1.0: every region) or no region is left. Each region's new pixels get that
   mean; pixels no region covered get the mean attribution over them.
   `algorithm="fast"` ranks the regions once by their whole mean and adds them
   in that order, each painting its new pixels with their mean.

The map is that per-pixel gain f32[B,H,W] (higher: a more important region).
Equal to PAIR's `XRAI.GetMask` (saliency 0.2.1, `XRAIParameters` defaults:
steps 100, area_threshold 1.0, min_pixel_diff 50, algorithm "full") with the
same baselines; its means are taken in float64 (PAIR's in float32), so region
means that tie to within float32 rounding may be ranked otherwise.

Steps 2 and 3 run on the host (numpy, scikit-image) through
`jax.pure_callback`: the method runs under the caller's `jax.jit` and
`jax.vmap`, but the segmentation and the selection are not compiled, not
differentiable, and run on the CPU whatever the device (the images and the
attributions travel to the host), the images of a batch on a thread per host
core. Cost: 2 m gradient passes.

    maps = xrai(clf, images, labels)                 # f32[B,H,W]
"""

import concurrent.futures
import functools
import os
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from salijax.classifier import Classifier
from salijax.methods.integrated_gradients import _integrated_gradients
from salijax.methods.registry import (
    Option,
    PassCount,
    Shapes,
    number,
    one_of,
    positive_int,
    register,
)

BASELINES = ("black_white", "min_max")
ALGORITHMS = ("full", "fast")
FELZENSZWALB_SCALES = (50, 100, 150, 250, 500, 1200)
FELZENSZWALB_SIGMA = 0.8
FELZENSZWALB_MIN_SIZE = 150
SEGMENTATION_SIZE = (224, 224)


def _non_negative_int(value: Any, name: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
    raise ValueError(f"{name} must be an int >= 0, got {value!r}")
  return int(value)


def candidate_regions(image: np.ndarray, dilation_radius: int = 5) -> np.ndarray:
  """bool[M,H,W], XRAI's candidate regions of one image f32[H,W,3] (module doc, step 2)."""
  # scikit-image's segmentation and morphology import scipy: loaded when XRAI runs, not
  # when salijax.methods is imported (the slim install imports nothing of the benchmark's).
  import skimage.morphology  # noqa: PLC0415
  import skimage.segmentation  # noqa: PLC0415
  import skimage.transform  # noqa: PLC0415
  from scipy import ndimage  # noqa: PLC0415

  image = np.asarray(image)
  low, high = image.min(), image.max()
  spread = high - low
  scaled = (image - low) / (spread if spread > 0 else 1) * 2 - 1  # [-1, 1]
  scaled = skimage.transform.resize(scaled, SEGMENTATION_SIZE, order=3, mode="constant",
                                    preserve_range=True, anti_aliasing=True)

  regions = []
  disk = skimage.morphology.disk(dilation_radius) if dilation_radius else None
  for scale in FELZENSZWALB_SCALES:
    labels = skimage.segmentation.felzenszwalb(scaled, scale=scale, sigma=FELZENSZWALB_SIGMA,
                                               min_size=FELZENSZWALB_MIN_SIZE)
    labels = skimage.transform.resize(labels, image.shape[:2], order=0, preserve_range=True,
                                      mode="constant", anti_aliasing=False).astype(int)
    first = labels.min()
    boxes = ndimage.find_objects(labels - first + 1)
    for label in range(first, labels.max() + 1):
      region = labels == label
      box = boxes[label - first] if label - first < len(boxes) else None
      if disk is not None and box is not None:
        # Dilated within its bounding box grown by the radius: the same as on the image.
        box = tuple(slice(max(b.start - dilation_radius, 0), b.stop + dilation_radius)
                    for b in box)
        region[box] = skimage.morphology.dilation(region[box], footprint=disk)
      regions.append(region)
  return np.stack(regions)


def select_regions(attribution: np.ndarray, regions: np.ndarray, *, area_threshold: float = 1.0,
                   min_pixel_diff: int = 50, algorithm: str = "full") -> np.ndarray:
  """f64[H,W], XRAI's map of one attribution f[H,W] and regions bool[M,H,W] (step 3)."""
  shape = attribution.shape
  values = np.asarray(attribution, np.float64).reshape(-1)
  masks = np.asarray(regions, bool).reshape(len(regions), -1)
  weights = masks.astype(np.float64)
  gains = np.full(values.shape, -np.inf)
  covered = np.zeros(values.shape, bool)
  if algorithm == "full":
    # Each region's count and sum of attribution over its pixels not yet covered, updated
    # as pixels get covered (each pixel once): O(M N) in all, not per region added.
    counts = masks.sum(axis=1)
    sums = weights @ values
    alive = np.ones(len(masks), bool)
    while covered.mean() <= area_threshold:
      alive &= counts >= min_pixel_diff
      if not alive.any():
        break
      candidates = np.flatnonzero(alive)
      means = sums[candidates] / counts[candidates]
      best = candidates[np.argmax(means)]  # the first of equal ones
      added = np.flatnonzero(masks[best] & ~covered)
      gains[added] = means.max()
      covered[added] = True
      counts -= masks[:, added].sum(axis=1)
      sums -= weights[:, added] @ values[added]
      alive[best] = False
  elif algorithm == "fast":
    whole = (weights @ values) / np.maximum(weights.sum(axis=1), 1)
    whole[~masks.any(axis=1)] = -np.inf
    for index in np.argsort(-whole, kind="stable"):
      added = masks[index] & ~covered
      if added.sum() < min_pixel_diff:
        continue
      gains[added] = values[added].mean()
      covered |= masks[index]
  else:
    raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
  rest = gains == -np.inf
  if rest.any():
    gains[rest] = values[rest].mean()
  return gains.reshape(shape)


def _host_maps(images: np.ndarray, attributions: np.ndarray, *, dilation_radius: int,
               area_threshold: float, min_pixel_diff: int, algorithm: str) -> np.ndarray:
  """f32[B,H,W,3], f32[B,H,W] -> f32[B,H,W]: segments and selection, image by image on a
  thread per host core (scikit-image's segmentation and numpy release the GIL: 1.5x faster
  on 2 cores at 112 px)."""
  def one(image_and_attribution: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    image, attribution = image_and_attribution
    return select_regions(attribution, candidate_regions(image, dilation_radius),
                          area_threshold=area_threshold, min_pixel_diff=min_pixel_diff,
                          algorithm=algorithm)

  pairs = list(zip(np.asarray(images), np.asarray(attributions), strict=True))
  with concurrent.futures.ThreadPoolExecutor(min(len(pairs), os.cpu_count() or 1)) as pool:
    return np.stack(list(pool.map(one, pairs))).astype(np.float32)


def pair_path(steps: int) -> tuple[np.ndarray, np.ndarray]:
  """PAIR's integrated-gradients points and weights, f64[m] each (module doc, step 1)."""
  return np.linspace(0.0, 1.0, steps), np.full(steps, 1.0 / steps)


def xrai_attribution(clf: Classifier, images: jax.Array, labels: jax.Array, *, steps: int,
                     baselines: str, chunk: int) -> jax.Array:
  """f32[B,H,W], XRAI's attribution (module doc, step 1): the channel max of the mean
  integrated gradients of the two baselines."""
  if baselines == "black_white":
    low, high = jnp.zeros_like(images), jnp.ones_like(images)
  else:
    low = jnp.broadcast_to(images.min(axis=(1, 2, 3), keepdims=True), images.shape)
    high = jnp.broadcast_to(images.max(axis=(1, 2, 3), keepdims=True), images.shape)
  alphas, weights = pair_path(steps)
  chunk = min(chunk, steps)
  num_chunks = -(-steps // chunk)
  padding = num_chunks * chunk - steps  # the padded tail has weight 0

  def chunks(values: np.ndarray) -> jax.Array:
    return jnp.asarray(np.pad(values, (0, padding)).reshape(num_chunks, chunk), jnp.float32)

  attributions = [_integrated_gradients(clf, images, labels, baseline, chunks(alphas),
                                        chunks(weights), reduce="none")
                  for baseline in (low, high)]
  return ((attributions[0] + attributions[1]) / 2).max(axis=-1)


@functools.partial(jax.jit, static_argnames=(
    "steps", "baselines", "chunk", "dilation_radius", "area_threshold", "min_pixel_diff",
    "algorithm"))
def _xrai(clf: Classifier, images: jax.Array, labels: jax.Array, *, steps: int, baselines: str,
          chunk: int, dilation_radius: int, area_threshold: float, min_pixel_diff: int,
          algorithm: str) -> jax.Array:
  """The jitted XRAI: compiled attribution, then the host's segments and selection."""
  attribution = xrai_attribution(clf, images, labels, steps=steps, baselines=baselines,
                                 chunk=chunk)
  host = functools.partial(_host_maps, dilation_radius=dilation_radius,
                           area_threshold=area_threshold, min_pixel_diff=min_pixel_diff,
                           algorithm=algorithm)
  return jax.pure_callback(host, jax.ShapeDtypeStruct(attribution.shape, jnp.float32), images,
                           attribution, vmap_method="sequential")


def _cost(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  del shapes
  return PassCount("gradient", 2 * options["steps"], min(options["chunk"], options["steps"]))


@register("xrai", title="XRAI",
          summary="segments ranked greedily by their mean integrated-gradients attribution",
          cost=_cost,
          options={"steps": Option(100, positive_int),
                   "baselines": Option("black_white", one_of(*BASELINES)),
                   "area_threshold": Option(1.0, number(0.0, 1.0)),
                   "min_pixel_diff": Option(50, positive_int),
                   "algorithm": Option("full", one_of(*ALGORITHMS)),
                   "dilation_radius": Option(5, _non_negative_int),
                   "chunk": Option(10, positive_int)},
          jitted=_xrai)
def xrai(clf: Classifier, images: jax.Array, labels: jax.Array, *, steps: int, baselines: str,
         area_threshold: float, min_pixel_diff: int, algorithm: str, dilation_radius: int,
         chunk: int) -> jax.Array:
  """XRAI maps f32[B,H,W]: each pixel the gain of the region that took it (module doc).

  Options: steps, m of each integrated-gradients run; baselines, "black_white"
  or PAIR's "min_max"; area_threshold, the selected area after which the rest
  is one region; min_pixel_diff, the fewest new pixels a region must add;
  algorithm, "full" or "fast"; dilation_radius, the regions' dilation (pixels);
  chunk, path points per loop step (memory and speed, not the result).
  Segments and selection run on the host (module doc).
  """
  return _xrai(clf, images, labels, steps=steps, baselines=baselines, chunk=chunk,
               dilation_radius=dilation_radius, area_threshold=area_threshold,
               min_pixel_diff=min_pixel_diff, algorithm=algorithm)
