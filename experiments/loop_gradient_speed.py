"""The input gradient of a model on its own and inside a loop, with and without
`salijax.wrapping.explicit_kernel_transposes` (docs/design.md, Gradients in loops).

One row per way of running `steps` input gradients of a salijax model with
random weights on a batch of B random images (each gradient taken at the
point the previous one reached, as the steps of Guided IG are):

  called      one jitted gradient, called `steps` times from Python
  scan        the gradients as the body of one `lax.scan`
  scan_explicit  the same scan through `salijax.methods.input_gradients.logit_gradients`,
              which puts the model under `explicit_kernel_transposes`

ms_per_image is the median over `repeats` runs of one gradient's time per
image; ratio is ms_per_image / that of `called`.

    rows = loop_gradient_benchmark("resnet18", image_size=224, batch_size=8)
"""

from collections.abc import Callable
from typing import Any

import jax

from experiments import method_speed
from salijax import models
from salijax.methods.input_gradients import logit_gradients

_STEP = 1e-3  # how far each step moves the images along their gradient


def _plain_gradient(apply: Callable[..., Any], variables: Any, images: jax.Array,
                    labels: jax.Array) -> jax.Array:
  """JAX's own input gradient of the target logits (no rewrite): f32[B,H,W,3]."""
  logits, pullback = jax.vjp(lambda x: apply(variables, x), images)
  return pullback(jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype))[0]


def loop_gradient_benchmark(model: str = "resnet18", *, image_size: int = 224,
                            batch_size: int = 8, steps: int = 4, warmup: int = 1,
                            repeats: int = 3, num_classes: int = 10) -> list[dict]:
  """Times the three ways (module doc); prints and returns one row each."""
  module = models.create(model, num_classes=num_classes)
  clf = models.classifier(module, models.init(module, jax.random.key(0), image_size))
  images = jax.random.uniform(jax.random.key(1), (batch_size, image_size, image_size, 3))
  labels = jax.random.randint(jax.random.key(2), (batch_size,), 0, num_classes)
  one = jax.jit(lambda v, x, y: _plain_gradient(clf.apply, v, x, y))

  def called():
    x = images
    for _ in range(steps):
      x = x + _STEP * one(clf.variables, x, labels)
    return x

  def scanned(gradient: Callable[..., jax.Array]) -> Callable[[], jax.Array]:
    def run(variables, x):
      def step(x, _):
        return x + _STEP * gradient(variables, x), None
      return jax.lax.scan(step, x, None, length=steps)[0]

    compiled = jax.jit(run)
    return lambda: compiled(clf.variables, images)

  ways = {
      "called": called,
      "scan": scanned(lambda v, x: _plain_gradient(clf.apply, v, x, labels)),
      "scan_explicit": scanned(lambda v, x: logit_gradients(clf.apply, v, x, labels)),
  }
  seconds = method_speed.interleaved_medians(list(ways.values()), warmup=warmup,
                                             repeats=repeats)
  rows = []
  for way, sec in zip(ways, seconds, strict=True):
    row = {"benchmark": "loop_gradients", "model": model, "image_size": image_size,
           "batch_size": batch_size, "steps": steps, "way": way,
           "device": jax.devices()[0].device_kind,
           "ms_per_image": round(1e3 * sec / (steps * batch_size), 3),
           "ratio": round(sec / seconds[0], 3)}
    print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    rows.append(row)
  return rows

