"""A model's passes with YNNPACK's convolutions and with XLA:CPU's own, side by side.

`salijax.cpu_convolutions` (why salijax's binaries choose XLA's convolutions on
a CPU). For each model, each pass of a batch of B random images, compiled twice
in one process (`jax.jit(..., compiler_options=...)`: `YNNPACK_CONVOLUTIONS`,
jaxlib 0.10's default, and `XLA_CONVOLUTIONS`), timed in alternation:

  forward           the logits
  gradient          the input gradient of the target logits (salijax's methods)
  scan_gradient     4 such gradients as the steps of one `lax.scan` (their sum), through
                    `salijax.methods.input_gradients.logit_gradients` (Guided
                    IG's and the looped metrics' way)
  parameter_gradient  the gradient of the mean cross-entropy with respect to
                    the parameters (inference-mode BatchNorm: training's
                    convolutions without its batch statistics)

Row fields: ynnpack_ms and xla_ms per image (per gradient for scan_gradient),
speedup = ynnpack_ms / xla_ms, and relative_difference = |a - b| / |a| of the
two results (Euclidean norms over all values): float32 rounding, ~1e-6 for the
logits; more for gradients where a rounding flips a ReLU of a random network.

    rows = cpu_convolution_benchmark(["resnet18"], image_size=224, batch_size=8)
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments import method_speed
from salijax import cpu_convolutions, models
from salijax.methods.input_gradients import logit_gradients

_SCAN_STEPS = 4
_STEP = 1e-3  # how far each scanned step moves the images along their gradient


def _passes(apply: Callable[..., Any], labels: jax.Array, num_classes: int
            ) -> dict[str, tuple[Callable[..., Any], int]]:
  """{pass: ((variables, images) -> result, passes per call)}."""
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
          "parameter_gradient": (parameter_gradient, 1)}


def _relative_difference(a: Any, b: Any) -> float:
  """|a - b| / |a|, Euclidean norms over all leaves of two pytrees of one structure."""
  a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(t)]).astype(np.float64)
          for t in (a, b))
  return float(np.linalg.norm(a - b) / max(np.linalg.norm(a), np.finfo(np.float32).tiny))


def cpu_convolution_benchmark(model_names: Sequence[str] = ("resnet18",), *,
                              image_size: int = 224, batch_size: int = 8, warmup: int = 1,
                              repeats: int = 3, num_classes: int = 10) -> list[dict]:
  """Times every pass of every model both ways (module doc); prints and returns the rows."""
  images = jax.random.uniform(jax.random.key(1), (batch_size, image_size, image_size, 3))
  labels = jax.random.randint(jax.random.key(2), (batch_size,), 0, num_classes)
  rows = []
  for name in model_names:
    module = models.create(name, num_classes=num_classes)
    variables = models.init(module, jax.random.key(0), image_size)
    for pass_name, (function, passes) in _passes(module.apply, labels, num_classes).items():
      ynnpack, xla = (jax.jit(function, compiler_options=options) for options in (
          cpu_convolutions.YNNPACK_CONVOLUTIONS, cpu_convolutions.XLA_CONVOLUTIONS))
      calls = [functools.partial(f, variables, images) for f in (ynnpack, xla)]
      seconds = method_speed.interleaved_medians(calls, warmup=warmup, repeats=repeats)
      row = {"benchmark": "cpu_convolutions", "model": name, "image_size": image_size,
             "batch_size": batch_size, "pass": pass_name,
             "device": jax.devices()[0].device_kind,
             "ynnpack_ms": round(1e3 * seconds[0] / (passes * batch_size), 3),
             "xla_ms": round(1e3 * seconds[1] / (passes * batch_size), 3),
             "speedup": round(seconds[0] / seconds[1], 3),
             "relative_difference": float(f"{_relative_difference(*(c() for c in calls)):.2e}")}
      print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
      rows.append(row)
  return rows
