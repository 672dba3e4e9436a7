"""What `salijax.wrap` costs: every method on a salijax ResNet, native against wrapped.

The native Classifier (`salijax.models.classifier`, the models' own taps) and
`salijax.wrap(module, variables, layer=...)` (Flax's method interception) of
the same module, variables and explained layer (the last block of `layer4`)
run the same method on the same images, timed in alternation in one process
(`method_speed.interleaved_medians`); the ratio wrapped / native is the
overhead of wrapping.

    rows = wrap_overhead("resnet18", 80, 8, methods=("gradcam", "rise"),
                         options={"rise": {"num_masks": 256}})
"""

from collections.abc import Mapping, Sequence
from typing import Any

import jax

import salijax
from experiments import method_speed
from salijax import models as models_lib

TARGET = 1.05  # Wrapping costs nothing measurable (docs/design.md#performance-targets).


def last_block(module: Any, variables: Any, images: jax.Array) -> str:
  """The linen path of a salijax ResNet's last `layer4` block ("layer4_1" for resnet18)."""
  blocks = [name for name, _ in salijax.wrapping.layer_names(module, variables, images)
            if name.startswith("layer4_") and "/" not in name]
  if not blocks:
    raise ValueError(f"expected a salijax ResNet (blocks named layer4_J), got {module!r}")
  return blocks[-1]


def wrap_overhead(model: str, image_size: int, batch_size: int, *,
                  methods: Sequence[str] | None = None,
                  options: Mapping[str, Mapping[str, Any]] | None = None,
                  warmup: int = 2, repeats: int = 10, num_classes: int = 10) -> list[dict]:
  """Times each method native and wrapped; prints and returns one row each.

  Args:
    model: a ResNet of `salijax.models.ARCHITECTURES` ("resnet18", ...), random weights.
    image_size, batch_size: the images explained per call, f32[B,S,S,3].
    methods: registered names (default: every one); options: {method: {option: value}}
      over each method's defaults.
    warmup, repeats: untimed calls after compiling; timed rounds (medians reported).
    num_classes: outputs of the model head.

  Returns:
    One dict per method: native_sec, wrapped_sec, ratio (wrapped / native),
    target and meets_target.
  """
  methods = tuple(salijax.methods.names()) if methods is None else tuple(methods)
  module = models_lib.create(model, num_classes=num_classes)
  variables = models_lib.init(module, jax.random.key(0), image_size)
  images = jax.random.uniform(jax.random.key(1), (batch_size, image_size, image_size, 3))
  labels = jax.random.randint(jax.random.key(2), (batch_size,), 0, num_classes)
  native = models_lib.classifier(module, variables, layer="layer4")
  wrapped = salijax.wrap(module, variables, layer=last_block(module, variables, images))
  rows = []
  for name in methods:
    given = dict((options or {}).get(name, {}))
    method_speed.resolve_options(name, given)  # an unknown option fails before any timing
    native_sec, wrapped_sec = method_speed.interleaved_medians(
        [method_speed.timed_call(name, clf, images, labels, given) for clf in (native, wrapped)],
        warmup=warmup, repeats=repeats)
    ratio = wrapped_sec / native_sec
    rows.append({"benchmark": "wrapped", "model": model, "method": name,
                 "image_size": image_size, "batch_size": batch_size,
                 "device": jax.devices()[0].device_kind, "native_sec": round(native_sec, 4),
                 "wrapped_sec": round(wrapped_sec, 4), "ratio": round(ratio, 3),
                 "target": TARGET, "meets_target": ratio <= TARGET})
    print(" ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
  return rows
