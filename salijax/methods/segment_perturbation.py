"""LIME's perturbations: which segments each sample keeps, and the perturbed images.

Sample s keeps segment j when bit (j mod 32) of the 32-bit word
`jax.random.bits(fold_in(fold_in(key, s), j // 32))` is 1: a fair coin per
(sample, segment), a function of (key, s, j) alone, so the same whatever the
number of segments, the chunking or the other images of the batch. Sample 0
keeps every segment (the unperturbed image).

A perturbed image shows the image where its pixel's segment is kept and the
fill elsewhere, for `hide`:
  "mean":  the image's mean colour (over all its pixels);
  "black": 0;
  "blur":  the image smoothed by a Gaussian of std 5 px (11 x 11 taps).
"""

import jax
import jax.numpy as jnp

from salijax.methods.gaussian_smoothing import gaussian_smooth

HIDE_MODES = ("mean", "black", "blur")
_BITS = 32
_BLUR_SIGMA = 5.0
_BLUR_TRUNCATE = 1.0  # radius int(5 * 1 + 0.5) = 5: 11 x 11 taps


def kept_segments(key: jax.Array, samples: jax.Array, num_segments: int) -> jax.Array:
  """bool[N, num_segments], which segments samples i32[N] keep (see the module doc)."""
  words = -(-num_segments // _BITS)

  def sample_bits(sample):
    sample_key = jax.random.fold_in(key, sample)
    word = jax.vmap(lambda w: jax.random.bits(jax.random.fold_in(sample_key, w), (), jnp.uint32))
    bits = (word(jnp.arange(words))[:, None] >> jnp.arange(_BITS, dtype=jnp.uint32)) & 1
    return (bits.reshape(-1)[:num_segments] == 1) | (sample == 0)

  return jax.vmap(sample_bits)(samples)


def hidden_fill(images: jax.Array, hide: str) -> jax.Array:
  """f32[B,H,W,3] -> what hides removed segments, f32[B,H,W,3] or f32[B,1,1,3]."""
  if hide == "mean":
    return images.mean(axis=(1, 2), keepdims=True)
  if hide == "black":
    return jnp.zeros((images.shape[0], 1, 1, 3), images.dtype)
  if hide == "blur":
    return gaussian_smooth(images, _BLUR_SIGMA, _BLUR_TRUNCATE)
  raise ValueError(f"hide must be one of {HIDE_MODES}, got {hide!r}")


def perturb(image: jax.Array, fill: jax.Array, segments: jax.Array, keep: jax.Array) -> jax.Array:
  """Perturbed copies f32[N,H,W,3] of image f32[H,W,3] for keep bool[N,K], segments i32[H,W].

  `fill` f32[H,W,3] or f32[1,1,3] shows where a pixel's segment is not kept.
  """
  shown = keep[:, segments]  # bool[N,H,W]
  return jnp.where(shown[..., None], image, fill)
