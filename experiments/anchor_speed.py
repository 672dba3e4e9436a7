"""salijax's methods beside their anchors (Captum 0.9, PAIR's saliency 0.2.1, zennit 0.5.1).

One torchvision-layout ResNet18 with random weights (`quantus_speed.inputs`)
runs in torch for Captum and, ported, in salijax; PAIR's framework-agnostic
methods call salijax's own port through a jitted gradient (its
`call_model_function`), and zennit runs torchvision's ResNet18 class with the
same weights (its canonizer needs torchvision's blocks), so the two sides
differ only in how the method is computed. For each pair of `PAIRS`, one row:

  salijax_sec, anchor_sec   seconds per image: the median of `repeats` calls on a
                            batch of B images for salijax, after compiling; one
                            pass over the batch for the anchor (Captum's batched
                            calls, PAIR's image-by-image loop)
  speedup                   anchor_sec / salijax_sec; goal: >= 1 everywhere and
                            >= 3 where the anchor loops in Python (`Pair.goal`)
  floor_sec, floor_ratio    salijax's pass-count floor per image (its registered
                            cost: passes x the time of one pass of that kind on
                            the batch it runs per pass, timed in alternation with
                            the method) and salijax_sec / floor_sec
  bound                     anchor_sec / floor_sec: the most any implementation
                            running salijax's passes could gain over the anchor
                            on this machine (the goal is out of reach where it is
                            below the goal: both sides spend the time in the same
                            model passes)

Each pair gives both sides the same work: the same window and stride, samples,
steps and baselines (the options in `PAIRS`), and as many images per forward
(`PER_FORWARD`; XLA:CPU slows down threefold on forwards of 512 images at
112 px, which salijax's default chunks give a batch of 8); the randomness of KernelSHAP's
coalitions and DeepLIFT-SHAP's baselines is drawn by each library itself, in
equal numbers. Torch runs on all cores.

    rows = anchor_benchmark(["occlusion"], image_size=112, batch_size=8)
"""

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import method_speed, quantus_speed
from salijax import methods
from salijax.methods.input_gradients import logit_gradients
from salijax.methods.registry import Shapes
from salijax.models.normalization import IMAGENET_MEAN, IMAGENET_STD

STEPS = 16  # the integration steps of XRAI, Guided IG and Blur IG on both sides
OCCLUSION_WINDOWS = 14  # occlusion's window: the image side / 14 (16 px at 224), stride half
KERNEL_SHAP_SAMPLES, KERNEL_SHAP_FEATURES = 200, 49  # coalitions; superpixels or 7 x 7 cells
SHAP_BASELINES = 8  # DeepLIFT-SHAP's baselines per image
# Images per forward on both sides: Captum's perturbations_per_eval (Occlusion: per image of
# the batch; KernelSHAP: one image at a time), salijax's chunk x B. PAIR's steps per call.
PER_FORWARD = 64


def _per_image(per_forward: int, batch: int) -> int:
  """salijax's `chunk` (copies of every image per forward) for `per_forward` images a forward."""
  return max(1, per_forward // batch)


@dataclasses.dataclass(frozen=True)
class Pair:
  """A salijax method and the anchor run timed against it, with the same work."""

  anchor: str  # "captum", "pair" or "zennit"
  options: Callable[[int, int], dict[str, Any]]  # (image size, batch) -> salijax's options
  run_anchor: Callable[[Any, quantus_speed.Inputs], None]  # (anchor module, batch) -> ran it
  goal: float = 1.0  # the speedup asked for (3 where the anchor loops in Python)


def _torch_batch(batch: quantus_speed.Inputs) -> Any:
  import torch  # noqa: PLC0415 - only this benchmark needs torch

  return torch.from_numpy(np.asarray(batch.images).transpose(0, 3, 1, 2).copy())


def _targets(batch: quantus_speed.Inputs) -> list[int]:
  return [int(label) for label in np.asarray(batch.labels)]


def _occlusion_window(size: int) -> tuple[int, int]:
  """(window, stride): 16 and 8 px at 224 px, scaled with the image (ceil)."""
  return -(-size // OCCLUSION_WINDOWS), -(-size // (2 * OCCLUSION_WINDOWS))


def _captum_occlusion(captum: Any, batch: quantus_speed.Inputs) -> None:
  window, stride = _occlusion_window(batch.images.shape[1])
  captum.attr.Occlusion(batch.torch_model).attribute(
      _torch_batch(batch), sliding_window_shapes=(3, window, window),
      strides=(3, stride, stride), baselines=0.5, target=_targets(batch),
      perturbations_per_eval=_per_image(PER_FORWARD, len(batch.labels)))


def _cell_mask(size: int) -> np.ndarray:
  """i64[1,1,size,size]: 7 x 7 square cells (KernelSHAP's features on Captum's side)."""
  cells = int(np.sqrt(KERNEL_SHAP_FEATURES))
  rows = np.minimum(np.arange(size) * cells // size, cells - 1)
  return (rows[:, None] * cells + rows[None, :]).astype(np.int64)[None, None]


def _captum_kernel_shap(captum: Any, batch: quantus_speed.Inputs) -> None:
  import torch  # noqa: PLC0415

  images = _torch_batch(batch)
  mask = torch.from_numpy(_cell_mask(images.shape[-1]))
  for b, target in enumerate(_targets(batch)):  # Captum fits one model per image
    fill = images[b:b + 1].mean(dim=(2, 3), keepdim=True)
    captum.attr.KernelShap(batch.torch_model).attribute(
        images[b:b + 1], baselines=fill, target=target, feature_mask=mask,
        n_samples=KERNEL_SHAP_SAMPLES, perturbations_per_eval=PER_FORWARD)


def _deeplift_model(batch: quantus_speed.Inputs) -> Any:
  """The torch model with one ReLU module per call (`torch_models`), as Captum's DeepLIFT
  needs."""
  from experiments import torch_models  # noqa: PLC0415 - imports torch

  torch_models.with_one_relu_module_per_call(batch.torch_model)
  return batch.torch_model


def _captum_deeplift(captum: Any, batch: quantus_speed.Inputs) -> None:
  images = _torch_batch(batch)
  captum.attr.DeepLift(_deeplift_model(batch)).attribute(images, baselines=images * 0,
                                                         target=_targets(batch))


def _captum_deeplift_shap(captum: Any, batch: quantus_speed.Inputs) -> None:
  import torch  # noqa: PLC0415

  images = _torch_batch(batch)
  baselines = torch.rand((SHAP_BASELINES, *images.shape[1:]), generator=torch.Generator()
                         .manual_seed(0))
  captum.attr.DeepLiftShap(_deeplift_model(batch)).attribute(images, baselines=baselines,
                                                             target=_targets(batch))


def _zennit_lrp(zennit: Any, batch: quantus_speed.Inputs) -> None:
  """zennit's EpsilonPlusFlat on torchvision's ResNet18 class with the batch's weights (its
  ResNetCanonizer needs torchvision's blocks), on the normalised images."""
  import torch  # noqa: PLC0415
  import torchvision  # noqa: PLC0415

  inner = batch.torch_model.model
  model = torchvision.models.resnet18(weights=None, num_classes=inner.fc.out_features)
  model.load_state_dict(inner.state_dict())
  model.eval()
  mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).reshape(1, 3, 1, 1)
  std = torch.tensor(IMAGENET_STD, dtype=torch.float32).reshape(1, 3, 1, 1)
  x = (_torch_batch(batch) - mean) / std
  one_hot = torch.eye(inner.fc.out_features)[torch.tensor(_targets(batch))]
  composite = zennit.composites.EpsilonPlusFlat(
      canonizers=[zennit.torchvision.ResNetCanonizer()])
  with zennit.attribution.Gradient(model=model, composite=composite) as attributor:
    attributor(x, lambda logits: one_hot * logits)


def call_model_function(clf: Any, label: int) -> Callable[..., dict[str, np.ndarray]]:
  """PAIR's call_model_function (INPUT_OUTPUT_GRADIENTS: d logit_label / d input) on a
  salijax Classifier, through one jitted gradient."""
  from saliency.core import base  # noqa: PLC0415 - the anchor, installed with the test extra

  gradient = _jitted_gradient(clf)

  def call(x_batch, call_model_args=None, expected_keys=None):
    del call_model_args, expected_keys
    x = jnp.asarray(x_batch, jnp.float32)
    return {base.INPUT_OUTPUT_GRADIENTS: np.asarray(
        gradient(clf.variables, x, jnp.full(x.shape[0], label, jnp.int32)))}

  return call


_GRADIENTS: dict[int, Callable[..., jax.Array]] = {}


def _jitted_gradient(clf: Any) -> Callable[..., jax.Array]:
  if id(clf.apply) not in _GRADIENTS:
    _GRADIENTS[id(clf.apply)] = jax.jit(lambda v, x, y: logit_gradients(clf.apply, v, x, y))
  return _GRADIENTS[id(clf.apply)]


class NumpyQuantileInterpolation:
  """numpy, whose `quantile` takes `interpolation=` again: PAIR 0.2.1's Guided IG calls
  np.quantile(..., interpolation="lower"), a keyword numpy 2.4 removed (now `method=`)."""

  def __getattr__(self, name: str) -> Any:
    return getattr(np, name)

  @staticmethod
  def quantile(values: Any, q: Any, interpolation: str = "linear") -> Any:
    return np.quantile(values, q, method=interpolation)


@contextlib.contextmanager
def _pair_numpy() -> Iterator[None]:
  """PAIR's Guided IG module sees `NumpyQuantileInterpolation` while the block runs."""
  from saliency.core import guided_ig  # noqa: PLC0415

  original = guided_ig.np
  guided_ig.np = NumpyQuantileInterpolation()
  try:
    yield
  finally:
    guided_ig.np = original


def _pair_loop(mask: Callable[[Any, np.ndarray, Any], Any]
               ) -> Callable[[Any, quantus_speed.Inputs], None]:
  """PAIR's methods explain one image at a time: mask(saliency.core, image, call) per image."""
  def run(core: Any, batch: quantus_speed.Inputs) -> None:
    with _pair_numpy():
      for image, label in zip(np.asarray(batch.images), _targets(batch), strict=True):
        mask(core, image, call_model_function(batch.clf, label))

  return run


PAIRS: dict[str, Pair] = {
    "occlusion": Pair(
        "captum", lambda size, batch: dict(zip(("window", "stride"), _occlusion_window(size),
                                               strict=True))
        | {"baseline": 0.5, "score": "logit", "chunk": _per_image(PER_FORWARD, batch)},
        _captum_occlusion, goal=3.0),
    "kernel_shap": Pair(
        "captum", lambda size, batch: {"num_samples": KERNEL_SHAP_SAMPLES,
                                       "num_segments": KERNEL_SHAP_FEATURES, "score": "logit",
                                       "chunk": _per_image(PER_FORWARD, batch)},
        _captum_kernel_shap, goal=3.0),
    "lrp": Pair("zennit", lambda size, batch: {"composite": "epsilon_plus_flat"}, _zennit_lrp),
    "deeplift": Pair("captum", lambda size, batch: {"baseline": "zero"}, _captum_deeplift),
    "deeplift_shap": Pair("captum", lambda size, batch: {"num_baselines": SHAP_BASELINES,
                                                  "chunk": SHAP_BASELINES},
                          _captum_deeplift_shap),
    "xrai": Pair("pair", lambda size, batch: {"steps": STEPS,
                                              "chunk": _per_image(STEPS, batch)}, _pair_loop(
        lambda core, image, call: core.XRAI().GetMask(
            image, call, batch_size=STEPS,
            extra_parameters=core.XRAIParameters(steps=STEPS))), goal=3.0),
    "guided_ig": Pair("pair", lambda size, batch: {"steps": STEPS}, _pair_loop(
        lambda core, image, call: core.GuidedIG().GetMask(
            image, call, x_baseline=np.zeros_like(image), x_steps=STEPS, max_dist=0.02,
            fraction=0.25)), goal=3.0),
    "blur_ig": Pair("pair", lambda size, batch: {"steps": STEPS,
                                                 "chunk": _per_image(STEPS, batch)}, _pair_loop(
        lambda core, image, call: core.BlurIG().GetMask(image, call, max_sigma=50.0,
                                                         steps=STEPS, batch_size=STEPS))),
}


def _significant(seconds: float) -> float:
  return float(f"{seconds:.4g}")


def _anchor_module(name: str) -> Any:
  if name == "captum":
    import captum.attr  # noqa: PLC0415 - the anchor, installed with the test extra
    return captum
  if name == "zennit":
    import zennit.attribution  # noqa: PLC0415
    import zennit.composites  # noqa: PLC0415
    import zennit.torchvision  # noqa: PLC0415
    return zennit
  from saliency import core  # noqa: PLC0415

  return core


def anchor_benchmark(names: Sequence[str] | None = None, *, image_size: int = 224,
                     batch_size: int = 8, warmup: int = 0, repeats: int = 3,
                     num_classes: int = 10) -> list[dict]:
  """Times each pair (module doc); prints and returns one row per method.

  Raises:
    ValueError: a name not in `PAIRS`.
  """
  import torch  # noqa: PLC0415

  torch.set_num_threads(os.cpu_count() or 1)
  names = tuple(PAIRS) if names is None else tuple(names)
  unknown = [name for name in names if name not in PAIRS]
  if unknown:
    raise ValueError(f"methods: expected names from {sorted(PAIRS)}, got unknown {unknown}")
  batch = quantus_speed.inputs(image_size, batch_size, num_classes)
  shapes = Shapes(batch_size, image_size, image_size,
                  method_speed.layer_channels(batch.clf, batch.images))
  passes = method_speed.pass_functions(batch.clf)
  rows = []
  for name in names:
    pair = PAIRS[name]
    method, options = methods.get(name), pair.options(image_size, batch_size)
    cost = method_speed.cost(name, method_speed.resolve_options(name, options), shapes)
    pass_batch = batch_size * cost.per_pass
    x = jnp.broadcast_to(batch.images[:1], (pass_batch, image_size, image_size, 3))
    y = jnp.zeros((pass_batch,), jnp.int32)
    salijax_sec, pass_sec = method_speed.interleaved_medians(
        [lambda method=method, options=options: method(batch.clf, batch.images, batch.labels,
                                                       key=jax.random.key(0), **options),
         lambda x=x, y=y, run=passes[cost.kind]: run(x, y)],
        warmup=warmup, repeats=repeats)
    floor_sec = cost.passes * pass_sec / pass_batch  # per image
    module = _anchor_module(pair.anchor)
    start = time.perf_counter()
    pair.run_anchor(module, batch)
    anchor_sec = time.perf_counter() - start
    row = {"benchmark": "anchors", "method": name, "anchor": pair.anchor, "model": "resnet18",
           "image_size": image_size, "batch_size": batch_size,
           "device": jax.devices()[0].device_kind,
           "salijax_sec": _significant(salijax_sec / batch_size),
           "anchor_sec": _significant(anchor_sec / batch_size),
           "speedup": round(anchor_sec / salijax_sec, 2),
           "floor_sec": _significant(floor_sec),
           "floor_ratio": round(salijax_sec / batch_size / floor_sec, 2),
           "bound": round(anchor_sec / batch_size / floor_sec, 2), "goal": pair.goal}
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    rows.append(row)
  return rows
