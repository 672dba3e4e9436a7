"""A model's passes with each of three YNNPACK lists of XLA:CPU, side by side.

`salijax.cpu_convolutions` (why salijax's binaries and training steps choose
XLA's convolutions and YNNPACK's dots and reductions on a CPU). For each model,
each pass of a batch of B random images, compiled three times in one process
(`jax.jit(..., compiler_options=...)`: `YNNPACK_CONVOLUTIONS`, jaxlib 0.10's
default; `XLA_CONVOLUTIONS`, YNNPACK's dots and reductions; `DOTS_ONLY`),
timed in alternation:

  forward           the logits
  gradient          the input gradient of the target logits (salijax's methods)
  scan_gradient     4 such gradients as the steps of one `lax.scan` (their sum), through
                    `salijax.methods.input_gradients.logit_gradients` (Guided
                    IG's and the looped metrics' way)
  parameter_gradient  the gradient of the mean cross-entropy with respect to
                    the parameters (inference-mode BatchNorm: training's
                    convolutions without its batch statistics)
  train_step        salijax's training step (batch statistics, SGD with momentum;
                    `salijax.train.throughput.sgd_training`)

Row fields: ynnpack_ms, xla_ms and dots_only_ms per image (per gradient for
scan_gradient), speedup = ynnpack_ms / xla_ms, dots_only_speedup = ynnpack_ms /
dots_only_ms, and relative_difference = |a - b| / |a| of the results of the
first two lists (Euclidean norms over all values): float32 rounding,
~1e-6 for the logits; more for gradients where a rounding flips a ReLU of a
random network.

    rows = cpu_convolution_benchmark(["resnet18"], image_size=224, batch_size=8)
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from experiments import method_speed
from salijax import cpu_convolutions, models
from salijax.methods.input_gradients import logit_gradients
from salijax.train import throughput

_LISTS = {"ynnpack": cpu_convolutions.YNNPACK_CONVOLUTIONS,
          "xla": cpu_convolutions.XLA_CONVOLUTIONS,
          "dots_only": cpu_convolutions.DOTS_ONLY}
_SCAN_STEPS = 4
_STEP = 1e-3  # how far each scanned step moves the images along their gradient


def _passes(module: nn.Module, variables: Any, labels: jax.Array, num_classes: int
            ) -> dict[str, tuple[Callable[..., Any], int]]:
  """{pass: ((variables, images) -> result, passes per call)}."""
  apply = module.apply
  train_step, state = throughput.sgd_training(module, variables, jax.random.key(3))
  valid = jnp.ones(labels.shape, bool)

  def gradient(variables, images):
    return logit_gradients(apply, variables, images, labels)

  def scan_gradient(variables, images):  # -> the sum of the steps' gradients
    def step(carry, _):
      x, total = carry
      grads = logit_gradients(apply, variables, x, labels)
      return (x + _STEP * grads, total + grads), None
    return jax.lax.scan(step, (images, jnp.zeros_like(images)), None, length=_SCAN_STEPS)[0][1]

  def parameter_gradient(variables, images):
    def loss(params):
      logits = apply({**variables, "params": params}, images)
      return -jnp.mean(jnp.sum(jax.nn.log_softmax(logits) * jax.nn.one_hot(labels, num_classes),
                               axis=-1))
    return jax.grad(loss)(variables["params"])

  return {"forward": (apply, 1), "gradient": (gradient, 1),
          "scan_gradient": (scan_gradient, _SCAN_STEPS),
          "parameter_gradient": (parameter_gradient, 1),
          "train_step": (lambda _, images: train_step(state, images, labels, valid), 1)}


def _relative_difference(a: Any, b: Any) -> float:
  """|a - b| / |a|, Euclidean norms over all leaves of two pytrees of one structure."""
  a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]).astype(np.float64)
          for t in (a, b))
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.finfo(np.float32).tiny))


def cpu_convolution_benchmark(model_names: Sequence[str] = ("resnet18",), *,
                              image_size: int = 224, batch_size: int = 8, warmup: int = 1,
                              repeats: int = 3, num_classes: int = 10) -> list[dict]:
  """Times every pass of every model three ways (module doc); prints and returns the rows."""
  images = jax.random.uniform(jax.random.key(1), (batch_size, image_size, image_size, 3))
  labels = jax.random.randint(jax.random.key(2), (batch_size,), 0, num_classes)
  rows = []
  for name in model_names:
    module = models.create(name, num_classes=num_classes)
    variables = models.init(module, jax.random.key(0), image_size)
    for pass_name, (function, passes) in _passes(module, variables, labels,
                                                  num_classes).items():
      calls = [functools.partial(jax.jit(function, compiler_options=options), variables, images)
               for options in _LISTS.values()]
      seconds = dict(zip(_LISTS, method_speed.interleaved_medians(
          calls, warmup=warmup, repeats=repeats), strict=True))
      row = {"benchmark": "cpu_convolutions", "model": name, "image_size": image_size,
             "batch_size": batch_size, "pass": pass_name,
             "device": jax.devices()[0].device_kind,
             **{f"{k}_ms": round(1e3 * v / (passes * batch_size), 3) for k, v in seconds.items()},
             "speedup": round(seconds["ynnpack"] / seconds["xla"], 3),
             "dots_only_speedup": round(seconds["ynnpack"] / seconds["dots_only"], 3),
             "relative_difference": float(f"{_relative_difference(calls[0](), calls[1]()):.2e}")}
      print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
      rows.append(row)
  return rows
