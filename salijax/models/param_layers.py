"""The torchvision layers of a model that hold parameters, with their kind.

Each model lists them (`ResNet.param_layers()`, `VGG.param_layers()`) in
torchvision's state_dict order; the weight port builds its key table from the
list, and prefix arguments (`bn_trainable`) are validated against it.

Kinds and their torch state_dict entries:
  CONV: `weight` f32[O,I,kh,kw].
  CONV_BIAS: `weight`, `bias` f32[O].
  BATCH_NORM: `weight`, `bias`, `running_mean`, `running_var` f32[C],
    `num_batches_tracked` int64[].
  LINEAR: `weight` f32[out,in], `bias` f32[out].
  FLAT_LINEAR: a LINEAR whose input is a flattened feature map (torch flattens
    it as C,H,W, salijax as H,W,C).
  Vision Transformer (`salijax.models.vit`):
  LAYER_NORM: `weight`, `bias` f32[C].
  IN_PROJECTION: a MultiheadAttention's fused `in_proj_weight` f32[3C,C] and
    `in_proj_bias` f32[3C].
  PARAMETER: a loose parameter; the name is the state_dict key itself
    ("class_token", "encoder.pos_embedding").
"""

from typing import NamedTuple

CONV = "conv"
CONV_BIAS = "conv_bias"
BATCH_NORM = "batch_norm"
LINEAR = "linear"
FLAT_LINEAR = "flat_linear"
# Vision Transformer
LAYER_NORM = "layer_norm"
IN_PROJECTION = "in_projection"
PARAMETER = "parameter"


class ParamLayer(NamedTuple):
  """A layer with parameters: its torchvision module name and its kind."""

  name: str
  kind: str
