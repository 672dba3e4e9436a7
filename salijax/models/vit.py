"""torchvision's Vision Transformer (vit_b_16) in Flax linen, NHWC in, tokens inside.

Architecture as torchvision's `VisionTransformer`: normalisation
`(x - mean) / std`; `conv_proj`, a patch_size x patch_size conv of stride
patch_size (with bias) to `hidden_dim` channels; its h x w map read row by row
as h * w tokens, after a learnt class token (N = 1 + h * w tokens);
`encoder`: plus the learnt positional embedding `encoder.pos_embedding`
f32[1,N,hidden_dim], dropout, `num_layers` pre-norm blocks
`encoder.layers.encoder_layer_I` (x + dropout(self_attention(ln_1(x))), then
x + mlp(ln_2(x)), mlp = Linear(hidden_dim, mlp_dim), exact GELU, Dropout,
Linear(mlp_dim, hidden_dim), Dropout), then LayerNorm `encoder.ln`; the class
token's row goes to `heads.head` (`salijax.models.heads`; torchvision's is
Linear(hidden_dim, num_classes)). LayerNorms have epsilon 1e-6; attention has
`num_heads` heads, softmax(q k^T / sqrt(hidden_dim / num_heads)) v.
vit_b_16 (`salijax.models.create("vit_b_16")`): patch 16, 12 layers, 12 heads,
hidden 768, mlp 3072, 224 x 224 images.

Image size: the positional embedding has one row per token, so the variables
fix the image size: `salijax.models.init(module, key, image_size)` makes them
for image_size x image_size images (torchvision's `image_size` argument; a
multiple of patch_size), and the model then takes only that size (a clear
ValueError otherwise). torchvision's checkpoints are for 224.

Self-attention keeps torch's fused input projection: `self_attention` holds
`in_proj_kernel` f32[hidden, 3 * hidden] (torch's `in_proj_weight`
transposed; columns q, k, v, each split into heads in order) and
`in_proj_bias` f32[3 * hidden], and a Dense `out_proj`.

Taps, each the output of that torchvision module (read and replaced by
`salijax.models.classifier(module, variables, layer=tap)`), in forward order:
  "conv_proj": the patch embedding map f32[B,h,w,hidden_dim].
  "encoder.dropout": the tokens entering the first block (class token and
    positional embedding added), f32[B,N,hidden_dim].
  Inside block I, "encoder.layers.encoder_layer_I." + "ln_1",
    "self_attention.out_proj", "self_attention" (the same tokens),
    "dropout", "ln_2", "mlp.0" (f32[B,N,mlp_dim]), "mlp.1" (GELU), "mlp.2",
    "mlp.3", "mlp.4", "mlp" (= "mlp.4"): [B,N,C] tokens; a value there
    replaces that branch only, the residual path keeps the block's input.
  "encoder.layers.encoder_layer_I": the block's output.
  "encoder.layers" (= the last block's output), "encoder.ln", "encoder" (= "encoder.ln").
Token taps become maps f32[B,h,w,C] through salijax's token handling
(`salijax.wrapping.layer_capture`): the class token (`PREFIX_TOKENS` = 1) is
dropped from the map and kept from the forward pass when a map is put back.
The head ("heads", "heads.head") is no tap: its output is the logits.

Default explained layer (`default_tap`): "encoder.layers.encoder_layer_{L-1}.ln_1",
the input of the last block's attention, as pytorch-grad-cam's ViT example
explains timm's `blocks[-1].norm1`. The head reads only the class token, and
every layer after the last attention acts on each token alone, so the patch
tokens of the last block's output (and of "encoder.ln") do not reach the
logits: gradients there are zero, and a CAM of them is empty. The last
attention is where the patch tokens last act on the class token.

Flax module names follow `salijax.models.naming.flax_path`: "conv_proj",
"encoder/layers/encoder_layer_0/{ln_1,self_attention/out_proj,dropout,ln_2,
mlp_0,...,mlp_4}", "encoder/ln", "heads/head" (or "heads/head_1",
"heads/head_4" for head="mlp"); the parameters "class_token" and
"encoder/pos_embedding" sit directly in those modules, as in torch.

Initialisation (torchvision's): conv_proj N(0, 1/fan_in) (torchvision's
truncation at +-2 is 50 standard deviations out), zero bias; class token
zeros; positional embedding N(0, 0.02); in_proj Xavier uniform, zero bias;
out_proj torch's default Linear weight U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
zero bias; mlp Linear layers Xavier uniform, biases N(0, 1e-6); LayerNorm
scale 1, bias 0; the linear head zeros (weight and bias) as torchvision's,
the mlp head torch's default Linear weights with zero biases (zeros would not train).
"""

import math
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from salijax.models import heads, naming, normalization, param_layers
from salijax.models.param_layers import ParamLayer
from salijax.models.parameter_free_layers import Activation

PREFIX_TOKENS = 1  # the class token, first
LAYER_NORM_EPSILON = 1e-6
TORCH_LINEAR_KERNEL = nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")
PATCH_KERNEL = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
XAVIER = nn.initializers.xavier_uniform()
MLP_BIAS = nn.initializers.normal(1e-6)
POSITION_INIT = nn.initializers.normal(0.02)
BLOCK_TAPS = ("ln_1", "self_attention.out_proj", "self_attention", "dropout", "ln_2",
              "mlp.0", "mlp.1", "mlp.2", "mlp.3", "mlp.4", "mlp")


class ViTShape(NamedTuple):
  """The sizes of a Vision Transformer (torchvision's constructor arguments)."""

  patch_size: int
  num_layers: int
  num_heads: int
  hidden_dim: int
  mlp_dim: int


VIT_B_16 = ViTShape(patch_size=16, num_layers=12, num_heads=12, hidden_dim=768, mlp_dim=3072)
VIT_B_16_GRID = 14  # 224 / 16: torchvision's vit_b_16 takes 224 x 224 images


def exact_gelu(x: jax.Array) -> jax.Array:
  """torch's GELU (approximate='none'): x * Phi(x), with erf."""
  return nn.gelu(x, approximate=False)


def layer_norm(name: str) -> nn.LayerNorm:
  """torch's LayerNorm(eps=1e-6), its variance computed as torch does (two passes)."""
  return nn.LayerNorm(epsilon=LAYER_NORM_EPSILON, use_fast_variance=False, name=name)


class SelfAttention(nn.Module):
  """torch's MultiheadAttention(hidden, num_heads, batch_first=True) on x, x, x.

  `__call__(x f32[B,N,C], train) -> f32[B,N,C]`; parameters as the module doc says.
  """

  num_heads: int
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    channels = x.shape[-1]
    kernel = self.param("in_proj_kernel", XAVIER, (channels, 3 * channels))
    bias = self.param("in_proj_bias", nn.initializers.zeros, (3 * channels,))
    qkv = x @ kernel + bias
    head_dim = channels // self.num_heads
    q, k, v = (a.reshape(*x.shape[:-1], self.num_heads, head_dim)
               for a in jnp.split(qkv, 3, axis=-1))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q / math.sqrt(head_dim), k)
    weights = nn.Dropout(self.dropout, deterministic=not train)(jax.nn.softmax(scores, axis=-1))
    heads_out = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(x.shape)
    return nn.Dense(channels, kernel_init=TORCH_LINEAR_KERNEL, bias_init=nn.initializers.zeros,
                    name="out_proj")(heads_out)


class EncoderBlock(nn.Module):
  """torchvision's EncoderBlock: `__call__(x f32[B,N,C], train) -> f32[B,N,C]`."""

  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = layer_norm("ln_1")(x)
    y = SelfAttention(self.num_heads, self.attention_dropout, name="self_attention")(y, train)
    y = nn.Dropout(self.dropout, deterministic=not train, name="dropout")(y)
    x = x + y
    y = layer_norm("ln_2")(x)
    y = nn.Dense(self.mlp_dim, kernel_init=XAVIER, bias_init=MLP_BIAS, name="mlp_0")(y)
    y = Activation(exact_gelu, name="mlp_1")(y)
    y = nn.Dropout(self.dropout, deterministic=not train, name="mlp_2")(y)
    y = nn.Dense(x.shape[-1], kernel_init=XAVIER, bias_init=MLP_BIAS, name="mlp_3")(y)
    y = nn.Dropout(self.dropout, deterministic=not train, name="mlp_4")(y)
    return x + y


class EncoderLayers(nn.Module):
  """torchvision's `encoder.layers` Sequential of `num_layers` EncoderBlocks."""

  num_layers: int
  num_heads: int
  mlp_dim: int
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    for i in range(self.num_layers):
      x = EncoderBlock(self.num_heads, self.mlp_dim, self.dropout, self.attention_dropout,
                       name=f"encoder_layer_{i}")(x, train)
    return x


class Encoder(nn.Module):
  """torchvision's Encoder: `__call__(tokens f32[B,N,C], train) -> f32[B,N,C]`.

  Its `pos_embedding` f32[1,N,C] is made for the N of the first call (see the
  module doc); `patch_size` only words the error for another N.
  """

  shape: ViTShape
  dropout: float = 0.0
  attention_dropout: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if self.has_variable("params", "pos_embedding"):
      tokens = self.get_variable("params", "pos_embedding").shape[1]
      if tokens != x.shape[1]:
        side = math.isqrt(tokens - PREFIX_TOKENS) * self.shape.patch_size
        got = math.isqrt(x.shape[1] - PREFIX_TOKENS) * self.shape.patch_size
        raise ValueError(
            f"images: expected {side} x {side} images, the size these variables were made "
            f"for (encoder.pos_embedding has {tokens} tokens; salijax.models.init's "
            f"image_size fixes it), got {got} x {got}")
    position = self.param("pos_embedding", POSITION_INIT, (1, *x.shape[1:]))
    x = nn.Dropout(self.dropout, deterministic=not train, name="dropout")(x + position)
    x = EncoderLayers(self.shape.num_layers, self.shape.num_heads, self.shape.mlp_dim,
                      self.dropout, self.attention_dropout, name="layers")(x, train)
    return layer_norm("ln")(x)


class VisionTransformer(nn.Module):
  """torchvision's VisionTransformer (see the module doc for the architecture and the taps).

  `__call__(images f32[B,S,S,3] in [0, 1], train=False)` -> logits
  f32[B,num_classes] (no softmax); S is the image size of the variables
  (a multiple of patch_size). train=True uses dropout (rng "dropout") where
  its rate is not 0.

  Attributes:
    shape: patch size, layers, heads, hidden and mlp widths (`VIT_B_16`);
      hidden_dim must be a multiple of num_heads.
    num_classes: the number of logits.
    head: "linear" or "mlp" (`salijax.models.heads`).
    normalize: apply `(images - mean) / std` first.
    mean, std: per-channel normalisation constants (ImageNet's by default).
    dropout, attention_dropout: torchvision's dropout rates (0 in vit_b_16).
  """

  shape: ViTShape = VIT_B_16
  num_classes: int = 1000
  head: str = "linear"
  normalize: bool = True
  mean: tuple[float, ...] = normalization.IMAGENET_MEAN
  std: tuple[float, ...] = normalization.IMAGENET_STD
  dropout: float = 0.0
  attention_dropout: float = 0.0

  def block_names(self) -> tuple[str, ...]:
    """The torchvision names of the encoder blocks, in order."""
    return tuple(f"encoder.layers.encoder_layer_{i}" for i in range(self.shape.num_layers))

  def tap_names(self) -> tuple[str, ...]:
    """Every tap name, in forward order (see the module doc)."""
    names = ["conv_proj", "encoder.dropout"]
    for block in self.block_names():
      names += [f"{block}.{tap}" for tap in BLOCK_TAPS] + [block]
    return (*names, "encoder.layers", "encoder.ln", "encoder")

  def default_tap(self) -> str:
    """The last block's "ln_1" (see the module doc for why)."""
    return f"{self.block_names()[-1]}.ln_1"

  def head_spec(self) -> heads.HeadSpec:
    """The replaceable head ("heads.head")."""
    kernel_init = nn.initializers.zeros if self.head == "linear" else TORCH_LINEAR_KERNEL
    return heads.HeadSpec(kind=self.head, num_classes=self.num_classes, prefix="heads.head",
                          kernel_init=kernel_init)

  def param_layers(self) -> tuple[ParamLayer, ...]:
    """Every layer (and loose parameter) with parameters, in torchvision's state_dict order."""
    layers = [ParamLayer("class_token", param_layers.PARAMETER),
              ParamLayer("conv_proj", param_layers.CONV_BIAS),
              ParamLayer("encoder.pos_embedding", param_layers.PARAMETER)]
    for block in self.block_names():
      layers += [ParamLayer(f"{block}.ln_1", param_layers.LAYER_NORM),
                 ParamLayer(f"{block}.self_attention", param_layers.IN_PROJECTION),
                 ParamLayer(f"{block}.self_attention.out_proj", param_layers.LINEAR),
                 ParamLayer(f"{block}.ln_2", param_layers.LAYER_NORM),
                 ParamLayer(f"{block}.mlp.0", param_layers.LINEAR),
                 ParamLayer(f"{block}.mlp.3", param_layers.LINEAR)]
    layers.append(ParamLayer("encoder.ln", param_layers.LAYER_NORM))
    layers += [ParamLayer(name, param_layers.LINEAR) for name in self.head_spec().layers()]
    return tuple(layers)

  def tap_path(self, tap: str) -> str:
    """The `/`-path of the Flax module whose output is `tap` ("...mlp" -> ".../mlp_4")."""
    name = f"{tap}.4" if tap.endswith(".mlp") else tap
    return "/".join(naming.flax_path(name))

  def check_image_size(self, image_size: int) -> None:
    """ValueError naming `image_size` unless it is a positive multiple of patch_size."""
    patch = self.shape.patch_size
    if (isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < patch
        or image_size % patch):
      raise ValueError(f"image_size: expected a positive multiple of the patch size {patch}, "
                       f"got {image_size!r}")

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    if not (isinstance(self.shape, ViTShape) and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in self.shape)):
      raise ValueError(f"shape: expected a ViTShape of positive ints, got {self.shape!r}")
    if self.shape.hidden_dim % self.shape.num_heads:
      raise ValueError(f"shape: hidden_dim {self.shape.hidden_dim} is not a multiple of "
                       f"num_heads {self.shape.num_heads}")
    normalization.check_images(images, min_size=self.shape.patch_size)
    height, width = images.shape[1:3]
    if height != width or height % self.shape.patch_size:
      raise ValueError(f"images: expected square images whose side is a multiple of the "
                       f"patch size {self.shape.patch_size}, got {tuple(images.shape)}")
    x = normalization.normalize_images(images, self.mean, self.std) if self.normalize else images
    patch = self.shape.patch_size
    x = nn.Conv(self.shape.hidden_dim, (patch, patch), strides=(patch, patch), padding="VALID",
                kernel_init=PATCH_KERNEL, bias_init=nn.initializers.zeros, name="conv_proj")(x)
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    class_token = self.param("class_token", nn.initializers.zeros, (1, 1, x.shape[-1]))
    x = jnp.concatenate([jnp.broadcast_to(class_token, (x.shape[0], 1, x.shape[-1])), x], axis=1)
    x = Encoder(self.shape, self.dropout, self.attention_dropout, name="encoder")(x, train)
    return heads.HeadContainer(self.head_spec(), name="heads")(x[:, 0], train)
