"""Training modes: which parameters and which BatchNorm layers train.

- "scratch": random initialisation; every parameter and every BatchNorm trains.
- "feature_extraction": only the head (the replaceable last layer, "fc" of a
  ResNet, "classifier.6" of a VGG) trains; every other parameter gets zero
  updates and every BatchNorm outside the head keeps its running statistics
  (inference-mode normalisation, no statistics update), so the backbone is
  exactly the pretrained feature extractor.
- "finetune": all layers train, or only the listed torchvision-style prefixes
  (for example ("layer4", "fc")); the other layers are frozen, their
  BatchNorm statistics included. "head" stands for the head's prefix.
"""

import dataclasses
from collections.abc import Sequence

MODES = ("scratch", "feature_extraction", "finetune")
HEAD = "head"


@dataclasses.dataclass(frozen=True)
class TrainablePlan:
  """What trains in a mode.

  Attributes:
    trainable: prefixes of the trainable parameters (for
      `salijax.models.trainable_mask`, may contain "head"), or None = all.
    bn_trainable: prefixes of the BatchNorm layers that use batch statistics
      in training (for `salijax.models.create(bn_trainable=)`, "head" resolved
      to the head prefix), or None = all.
  """

  trainable: tuple[str, ...] | None
  bn_trainable: tuple[str, ...] | None


def trainable_plan(mode: str, layers: Sequence[str], *, head_prefix: str) -> TrainablePlan:
  """The `TrainablePlan` of `mode`.

  Args:
    mode: one of `MODES`.
    layers: for "finetune", the trainable prefixes (empty = all layers); must
      be empty for the other modes.
    head_prefix: the torchvision name of the model's head, e.g. "fc".
  """
  if mode not in MODES:
    raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
  layers = tuple(layers)
  if mode != "finetune" and layers:
    raise ValueError(
        f"trainable_layers: only mode='finetune' takes a list of layers "
        f"(mode={mode!r} fixes them), got {','.join(layers)!r}")
  if mode == "scratch" or (mode == "finetune" and not layers):
    return TrainablePlan(trainable=None, bn_trainable=None)
  if mode == "feature_extraction":
    return TrainablePlan(trainable=(HEAD,), bn_trainable=(head_prefix,))
  bn = tuple(dict.fromkeys(head_prefix if p == HEAD else p for p in layers))
  return TrainablePlan(trainable=layers, bn_trainable=bn)
