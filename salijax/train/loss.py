"""Cross-entropy on logits, with optional label smoothing, and per-example correctness.

The models return logits (no softmax), and the loss applies the only
log-softmax (`optax.softmax_cross_entropy`), so no probability is squashed
twice. With smoothing `e` over `K` classes the target is
`(1 - e) * one_hot(label) + e / K`.
"""

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, labels: jax.Array, *,
                  label_smoothing: float = 0.0) -> jax.Array:
  """Per-example cross-entropy f32[B] of logits f32[B,K] against labels int[B]."""
  num_classes = logits.shape[-1]
  targets = jax.nn.one_hot(labels, num_classes, dtype=logits.dtype)
  if label_smoothing:
    targets = optax.smooth_labels(targets, label_smoothing)
  return optax.softmax_cross_entropy(logits, targets)


def correct(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """f32[B]: 1 where argmax(logits f32[B,K]) == labels int[B], else 0."""
  return (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
