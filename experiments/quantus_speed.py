"""salijax's model-based metrics beside Quantus 0.6 on the same CPU, model, images and maps.

One torchvision-layout ResNet18 with random weights (experiments/torch_models.py)
runs in torch for Quantus and, ported (`salijax.porting.torchvision_to_flax`),
in salijax; both see the same [0, 1] images (the torch model normalises first)
and the same maps (salijax's `gradient` maps of the port). For each metric of
`PAIRS` and each image size, one row:

  salijax_sec, quantus_sec   seconds per image (median of `repeats` calls on a
                             batch of B images for salijax, after compiling;
                             one call for Quantus, whose loops run in Python)
  speedup                    quantus_sec / salijax_sec (goal: >= 20)
  floor_sec, floor_ratio     the metric's passes per image (`Pair.passes`: forwards,
                             or gradients plus `Pair.forwards` forwards for the
                             method metrics) at the throughputs measured in
                             alternation with it on batches of its chunk's size,
                             and salijax_sec / floor_sec (goal: <= 1.15)

Each pair fixes options that give both libraries the same work (the same
steps, subsets or perturbations per image; ROAD on grey images, which
Quantus's ROAD needs, and in Quantus also on the reversed maps, for salijax's
LeRF; sensitivity-n as Quantus's FaithfulnessCorrelation at each subset size,
the quantity it equals; Quantus explaining the images itself where salijax's
metric does); docs/metrics.md says where the definitions differ. Quantus runs
torch on all cores (`torch.set_num_threads`).

    rows = quantus_benchmark(["pixel_flipping"], image_sizes=(112,), batch_size=8)
"""

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import method_speed
from salijax import methods, metrics, models
from salijax.classifier import Classifier
from salijax.gaussian_blur import gaussian_blur
from salijax.models.normalization import IMAGENET_MEAN, IMAGENET_STD
from salijax.porting import torchvision_to_flax

SPEEDUP_GOAL = 20.0  # issue 15: every model-based metric >= 20x Quantus
FLOOR_TARGET = 1.15  # and within 1.15x of its forward-pass floor


@dataclasses.dataclass(frozen=True)
class Inputs:
  """One batch for both libraries."""

  clf: Classifier  # salijax's port
  torch_model: Any  # torch: NCHW pixels in [0, 1] -> logits
  images: jax.Array  # f32[B,H,W,3] in [0, 1]
  maps: jax.Array  # f32[B,H,W]
  labels: jax.Array  # i32[B]
  num_classes: int  # the models' outputs

  def quantus_args(self) -> dict[str, np.ndarray]:
    """Quantus's x_batch (NCHW), y_batch and a_batch (N,1,H,W) in numpy."""
    return {"x_batch": np.asarray(self.images).transpose(0, 3, 1, 2),
            "y_batch": np.asarray(self.labels),
            "a_batch": np.asarray(self.maps)[:, None]}


@dataclasses.dataclass(frozen=True)
class Pair:
  """A salijax metric and the Quantus metric(s) it is timed against, with equal work."""

  salijax: Callable[[Inputs, int], Any]  # (inputs, chunk) -> the metric's result
  quantus: Callable[[Any, int, int], Sequence[Any]]  # (quantus, H, classes) -> Quantus metrics
  passes: Callable[[int, Any], float]  # (H, salijax's result) -> passes per image
  kind: str = "forward"  # the pass: "forward", or "gradient" (method metrics)
  forwards: int = 0  # forwards per image beside gradient passes (relative stability's logits)
  chunk: int = 64  # salijax's images per pass
  quantus_calls: Callable[[Inputs], Sequence[tuple[Any, dict]]] = (
      lambda batch: [(batch.torch_model, batch.quantus_args())])  # the (model, x/y/a
  # arguments) of each call of each Quantus metric (several: the same work as salijax's)


STEPS = 96  # forwards per image of the step-wise metrics (Quantus's defaults are up to 3 H W)
SAMPLES = 16  # perturbations per image of the robustness metrics
ROAD_PERCENTAGES = tuple(range(2, 98, 4))  # 24; salijax runs MoRF and LeRF: 48 imputations
SUBSET_FRACTIONS = (1 / 64, 1 / 16, 1 / 8, 1 / 4)  # sensitivity-n's subset sizes n / (H W)
# (Quantus draws 3 n values among the H W of a one-channel map: 3 n < H W)


def _subset_sizes(size: int) -> tuple[int, ...]:
  return tuple(int(size * size * fraction) for fraction in SUBSET_FRACTIONS)


def _grey(images: jax.Array) -> jax.Array:
  """f32[B,H,W,3] -> the same shape, each pixel's channel mean on all three channels."""
  return jnp.broadcast_to(images.mean(axis=-1, keepdims=True), images.shape)


def _grey_road_calls(batch: Inputs) -> list[tuple[Any, dict]]:
  """Quantus 0.6.0's ROAD indexes the image's values as pixels, so it runs only on
  one-channel images: it gets the grey images through a model that repeats the channel (the
  same forwards as salijax's on the grey RGB images), once with the maps and once with the
  maps reversed, max - map (it removes the most salient pixels first; salijax also LeRF)."""
  import torch  # noqa: PLC0415

  class Grey(torch.nn.Module):
    def __init__(self, model):
      super().__init__()
      self.model = model

    def forward(self, x):
      return self.model(x.repeat(1, 3, 1, 1))

  args = batch.quantus_args()
  args["x_batch"] = args["x_batch"].mean(axis=1, keepdims=True)
  model = Grey(batch.torch_model).eval()
  reversed_maps = args["a_batch"].max() - args["a_batch"]  # Quantus refuses maps all <= 0
  return [(model, args), (model, {**args, "a_batch": reversed_maps})]


def _unexplained(batch: Inputs) -> list[tuple[Any, dict]]:
  """No maps given: Quantus explains the images itself, as salijax's metric does."""
  return [(batch.torch_model, {**batch.quantus_args(), "a_batch": None})]


def _pixels_per_step(size: int, steps: int = STEPS) -> int:
  """k, salijax's pixels per step: `steps` steps (ceil(H W / k)) at size x size."""
  return -(-size * size // steps)


def _values_per_step(size: int, steps: int = STEPS) -> int:
  """Quantus's features_in_step: 3 H W / steps values (Quantus requires a divisor of H W)."""
  return 3 * size * size // steps


def _pairs() -> dict[str, Pair]:
  """Every timed pair. Quantus counts channel values where salijax counts pixels (3 k), and
  its "black" is the image's minimum (salijax's "min")."""
  quiet = {"disable_warnings": True, "display_progressbar": False, "normalise": False,
           "abs": False}
  key = jax.random.key(0)
  return {
      "pixel_flipping": Pair(
          lambda i, chunk: metrics.pixel_flipping(
              i.clf, i.images, i.maps, i.labels,
              features_in_step=_pixels_per_step(i.images.shape[1]), baseline="min", chunk=chunk),
          lambda q, h, k: [q.PixelFlipping(features_in_step=_values_per_step(h), **quiet)],
          lambda h, r: r.curve.shape[1]),
      "region_perturbation": Pair(
          lambda i, chunk: metrics.region_perturbation(
              i.clf, i.images, i.maps, i.labels, patch_size=i.images.shape[1] // 8,
              regions_evaluation=64, baseline="min", chunk=chunk),
          lambda q, h, k: [q.RegionPerturbation(patch_size=h // 8, regions_evaluation=64,
                                                **quiet)],
          lambda h, r: r.curve.shape[1]),
      "selectivity": Pair(
          lambda i, chunk: metrics.selectivity(
              i.clf, i.images, i.maps, i.labels, patch_size=i.images.shape[1] // 8,
              baseline="min", chunk=chunk),
          lambda q, h, k: [q.Selectivity(patch_size=h // 8, **quiet)],
          lambda h, r: r.curve.shape[1]),
      "irof": Pair(
          lambda i, chunk: metrics.irof(i.clf, i.images, i.maps, i.labels, chunk=chunk),
          lambda q, h, k: [q.IROF(perturb_func=_broadcast_mask_replacement, **quiet)],
          lambda h, r: r.curve.shape[1]),
      "faithfulness_correlation": Pair(
          lambda i, chunk: metrics.faithfulness_correlation(
              i.clf, i.images, i.maps, i.labels, key=key, num_runs=STEPS,
              subset_size=_pixels_per_step(i.images.shape[1], 16), baseline="min", chunk=chunk),
          lambda q, h, k: [q.FaithfulnessCorrelation(
              nr_runs=STEPS, subset_size=3 * _pixels_per_step(h, 16), **quiet)],
          lambda h, r: STEPS + 1),
      "faithfulness_estimate": Pair(
          lambda i, chunk: metrics.faithfulness_estimate(
              i.clf, i.images, i.maps, i.labels, step_pixels=_pixels_per_step(i.images.shape[1]),
              baseline="min", chunk=chunk),
          lambda q, h, k: [q.FaithfulnessEstimate(features_in_step=_values_per_step(h), **quiet)],
          lambda h, r: r.score_drops.shape[1] + 1),
      "monotonicity": Pair(
          lambda i, chunk: metrics.monotonicity(
              i.clf, i.images, i.maps, i.labels, step_pixels=_pixels_per_step(i.images.shape[1]),
              baseline="min", chunk=chunk),
          lambda q, h, k: [q.Monotonicity(features_in_step=_values_per_step(h), **quiet)],
          lambda h, r: r.curve.shape[1]),
      "monotonicity_correlation": Pair(
          lambda i, chunk: metrics.monotonicity_correlation(
              i.clf, i.images, i.maps, i.labels, key=key, num_samples=4,
              step_pixels=_pixels_per_step(i.images.shape[1], STEPS // 4), chunk=chunk),
          lambda q, h, k: [q.MonotonicityCorrelation(
              nr_samples=4, features_in_step=_values_per_step(h, STEPS // 4), **quiet)],
          lambda h, r: 4 * r.variances.shape[1] + 1),
      "infidelity": Pair(
          lambda i, chunk: metrics.infidelity(
              i.clf, i.images, i.maps, i.labels, perturbation="patches",
              patch_size=i.images.shape[1] // 8, chunk=chunk),
          lambda q, h, k: [q.Infidelity(perturb_patch_sizes=[h // 8], n_perturb_samples=1,
                                        **quiet)],
          lambda h, r: 8 * 8 + 1),
      "sensitivity": Pair(
          lambda i, chunk: metrics.sensitivity(
              methods.gradient, i.clf, i.images, i.labels, key=key, num_samples=SAMPLES,
              chunk=chunk),
          lambda q, h, k: [q.MaxSensitivity(nr_samples=SAMPLES, **quiet)],
          lambda h, r: SAMPLES + 1, kind="gradient", chunk=16),
      "local_lipschitz_estimate": Pair(
          lambda i, chunk: metrics.local_lipschitz_estimate(
              methods.gradient, i.clf, i.images, i.labels, key=key, num_samples=SAMPLES,
              chunk=chunk),
          lambda q, h, k: [q.LocalLipschitzEstimate(nr_samples=SAMPLES, **quiet)],
          lambda h, r: SAMPLES + 1, kind="gradient", chunk=16),
      "relative_stability": Pair(
          lambda i, chunk: metrics.relative_stability(
              methods.gradient, i.clf, i.images, i.labels, key=key, num_samples=SAMPLES,
              chunk=chunk),
          lambda q, h, k: [
              q.RelativeInputStability(nr_samples=SAMPLES, **quiet),
              q.RelativeRepresentationStability(nr_samples=SAMPLES,
                                                layer_names=["model.layer4.1"], **quiet),
              q.RelativeOutputStability(nr_samples=SAMPLES, **quiet)],
          lambda h, r: SAMPLES + 1, kind="gradient", forwards=SAMPLES + 1, chunk=16),
      "road": Pair(
          lambda i, chunk: metrics.road(i.clf, _grey(i.images), i.maps, i.labels, key=key,
                                        percentages=ROAD_PERCENTAGES, chunk=chunk),
          lambda q, h, k: [q.ROAD(percentages=list(ROAD_PERCENTAGES), **quiet)],
          lambda h, r: 2 * r.morf_accuracy.shape[1], quantus_calls=_grey_road_calls),
      "sensitivity_n": Pair(
          lambda i, chunk: metrics.sensitivity_n(
              i.clf, i.images, i.maps, i.labels, key=key,
              subset_sizes=_subset_sizes(i.images.shape[1]), num_samples=STEPS // 4,
              baseline="min", chunk=chunk),
          lambda q, h, k: [q.FaithfulnessCorrelation(nr_runs=STEPS // 4, subset_size=3 * n,
                                                     **quiet) for n in _subset_sizes(h)],
          lambda h, r: r.correlation.shape[1] * STEPS // 4 + 1),
      "completeness": Pair(
          lambda i, chunk: metrics.completeness(i.clf, i.images, i.maps, i.labels,
                                                baseline="min"),
          lambda q, h, k: [q.Completeness(**quiet)],
          lambda h, r: 2, chunk=16),  # one forward of the 8 images and their 8 baselines
      "random_logit": Pair(
          lambda i, chunk: metrics.random_logit(methods.gradient, i.clf, i.images, i.labels,
                                                key=key, similarity="flat_ssim"),
          lambda q, h, k: [q.RandomLogit(num_classes=k, **quiet)],
          lambda h, r: 2, kind="gradient", chunk=8, quantus_calls=_unexplained),
      "efficient_mprt": Pair(
          lambda i, chunk: metrics.efficient_mprt(methods.gradient, i.clf, i.images, i.labels,
                                                  key=key),
          lambda q, h, k: [q.EfficientMPRT(**{name: value for name, value in quiet.items()
                                              if name not in ("normalise", "abs")})],
          lambda h, r: 2, kind="gradient", chunk=8),
  }


def _broadcast_mask_replacement(arr: np.ndarray, mask: np.ndarray, **kwargs) -> np.ndarray:
  """Quantus 0.6.0's IROF passes a [1,H,W] mask for [3,H,W] images, which its default
  perturb_func cannot index: the same replacement with the mask on every channel."""
  from quantus.functions.perturb_func import baseline_replacement_by_mask  # noqa: PLC0415

  return baseline_replacement_by_mask(arr, np.broadcast_to(mask, arr.shape), **kwargs)


def _pixel_model(torch: Any, model: Any) -> Any:
  """`model` behind the ImageNet normalisation: NCHW pixels in [0, 1] -> logits."""
  mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).reshape(1, 3, 1, 1)
  std = torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(1, 3, 1, 1)

  class PixelModel(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.model = model

    def forward(self, x):
      return self.model((x - mean) / std)

  return PixelModel().eval()


def inputs(image_size: int, batch_size: int, num_classes: int = 10, seed: int = 0) -> Inputs:
  """A random-weight ResNet18 in both libraries, smooth random images, their gradient maps."""
  import torch  # noqa: PLC0415 - only this benchmark needs torch

  from experiments import torch_models  # noqa: PLC0415 - imports torch

  model = torch_models.build("resnet18", num_classes=num_classes, seed=seed)
  variables = torchvision_to_flax("resnet18", {k: v.numpy() for k, v in
                                               model.state_dict().items()})
  clf = models.classifier(models.create("resnet18", num_classes=num_classes), variables,
                          "layer4")
  noise = jax.random.uniform(jax.random.key(seed), (batch_size, image_size, image_size, 3))
  blurred = gaussian_blur(noise, 2 * (image_size // 16) + 1, image_size / 32)
  low, high = blurred.min(axis=(1, 2, 3), keepdims=True), blurred.max(axis=(1, 2, 3),
                                                                       keepdims=True)
  images = (blurred - low) / (high - low)  # smooth blobs over [0, 1]: segments for SLIC
  labels = metrics.predicted_labels(clf, images)
  maps = methods.gradient(clf, images, labels)
  return Inputs(clf, _pixel_model(torch, model), images, maps, labels, num_classes)


def _quantus_seconds(pair: Pair, quantus: Any, batch: Inputs) -> float:
  """Seconds of Quantus's metric(s) on the batch; method metrics explain with Captum's
  Saliency (one gradient per map, as salijax's `gradient`)."""
  explain = ({"explain_func": quantus.explain, "explain_func_kwargs": {"method": "Saliency"}}
             if pair.kind == "gradient" else {})
  start = time.perf_counter()
  for metric in pair.quantus(quantus, batch.images.shape[1], batch.num_classes):
    for model, args in pair.quantus_calls(batch):
      metric(model=model, **args, channel_first=True, device="cpu",
             batch_size=len(batch.labels), **explain)
  return time.perf_counter() - start


def quantus_benchmark(names: Sequence[str] | None = None, *, image_sizes: Sequence[int] = (112,),
                      batch_size: int = 8, warmup: int = 1, repeats: int = 3,
                      num_classes: int = 10) -> list[dict]:
  """Times each pair (module doc); prints and returns one row per (metric, image size).

  Raises:
    ValueError: a name not in `_pairs()`.
  """
  import quantus  # noqa: PLC0415 - the anchor, installed with the test extra
  import torch  # noqa: PLC0415

  torch.set_num_threads(os.cpu_count() or 1)
  if not hasattr(np, "trapz"):  # Quantus 0.6.0 calls numpy.trapz, numpy 2's trapezoid
    np.trapz = np.trapezoid
  pairs = _pairs()
  names = tuple(pairs) if names is None else tuple(names)
  unknown = [name for name in names if name not in pairs]
  if unknown:
    raise ValueError(f"metrics: expected names from {sorted(pairs)}, got unknown {unknown}")
  rows = []
  for size in image_sizes:
    batch = inputs(size, batch_size, num_classes)
    runs = method_speed.pass_functions(batch.clf)
    for name in names:
      pair = pairs[name]
      pass_batch = max(1, pair.chunk // batch_size) * batch_size
      x = jnp.broadcast_to(batch.images[:1], (pass_batch, size, size, 3))
      y = jnp.zeros((pass_batch,), jnp.int32)
      passes = pair.passes(size, pair.salijax(batch, pair.chunk))  # compiles it
      metric_sec, pass_sec, forward_sec = method_speed.interleaved_medians(
          [lambda pair=pair, batch=batch: pair.salijax(batch, pair.chunk),
           lambda x=x, y=y, run=runs[pair.kind]: run(x, y),
           lambda x=x, y=y, run=runs["forward"]: run(x, y)], warmup=max(warmup - 1, 0),
          repeats=repeats)
      try:
        quantus_sec, quantus_error = _quantus_seconds(pair, quantus, batch), None
      except Exception as error:  # noqa: BLE001 - the row reports Quantus's failure
        quantus_sec, quantus_error = math.nan, f"{type(error).__name__}: {error}"
      floor_sec = (passes * pass_sec + pair.forwards * forward_sec) * batch_size / pass_batch
      row = {"benchmark": "quantus", "metric": name, "model": "resnet18", "image_size": size,
             "batch_size": batch_size, "device": jax.devices()[0].device_kind,
             "pass_kind": pair.kind, "passes_per_image": round(passes, 1),
             "extra_forwards_per_image": pair.forwards,
             "salijax_sec": round(metric_sec / batch_size, 4),
             "quantus_sec": round(quantus_sec / batch_size, 4),
             "speedup": round(quantus_sec / metric_sec, 1),
             "floor_sec": round(floor_sec / batch_size, 4),
             "floor_ratio": round(metric_sec / floor_sec, 3), "quantus_error": quantus_error}
      print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
      rows.append(row)
  return rows
