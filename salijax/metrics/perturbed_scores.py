"""The class scores of many perturbed copies of every image, in chunks of forwards.

Most model-based metrics score J perturbed copies x_j of each of B images
(steps of a curve, random subsets, noisy copies) and reduce the J scores to a
number per image. `perturbed_scores` runs those B J forwards as one loop of
forwards of B s images each (s = `per_forward` copies of every image), so
memory grows with s, not with J, and a batch sharded over devices stays
sharded (the batch axis is the outermost axis of every forward):

    def copies(jobs):                 # i32[s] -> f32[B, s, H, W, 3]
      return jnp.where(masks[jobs][None], images[:, None], baseline[:, None])
    scores = perturbed_scores(clf, copies, labels, num_jobs=J, per_forward=s)  # f32[B, J]

`copies` must build copy j of every image from j alone (a pure function of
the job index and what it closes over), so the result does not depend on s.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier

SCORES = ("softmax", "logit")


def class_scores(clf: Classifier, images: jax.Array, labels: jax.Array,
                 score: str = "softmax") -> jax.Array:
  """f32[B,S,H,W,3] copies, i32[B] labels -> f32[B,S]: each copy's score of its image's class.

  score: "softmax" (the class probability) or "logit".
  """
  batch, copies = images.shape[:2]
  logits = clf.logits(images.reshape(batch * copies, *images.shape[2:]))
  logits = logits.reshape(batch, copies, -1)
  values = jax.nn.softmax(logits, axis=-1) if score == "softmax" else logits
  return jnp.take_along_axis(values, labels[:, None, None], axis=2)[..., 0].astype(jnp.float32)


def perturbed_scores(clf: Classifier, copies: Callable[[jax.Array], jax.Array],
                     labels: jax.Array, *, num_jobs: int, per_forward: int,
                     score: str = "softmax") -> jax.Array:
  """The scores f32[B, num_jobs] of copies 0..num_jobs-1 of every image (module doc).

  Args:
    clf: the Classifier.
    copies: i32[s] job indices -> f32[B, s, H, W, 3], those copies of every image.
    labels: i32[B], the class scored for each image.
    num_jobs: J, the copies per image.
    per_forward: s, the copies of every image per forward (clipped to [1, J]).
    score: "softmax" or "logit" (`class_scores`).
  """
  per_forward = min(max(1, per_forward), num_jobs)
  scores_of = lambda jobs: class_scores(clf, copies(jobs), labels, score)  # noqa: E731
  jobs = jnp.arange(num_jobs, dtype=jnp.int32)
  full = num_jobs // per_forward * per_forward
  parts = []
  if full:
    chunks = jax.lax.map(scores_of, jobs[:full].reshape(-1, per_forward))  # f32[F,B,s]
    parts.append(jnp.moveaxis(chunks, 0, 1).reshape(labels.shape[0], full))
  if full < num_jobs:
    parts.append(scores_of(jobs[full:]))
  return jnp.concatenate(parts, axis=1)


def per_forward(chunk: int, batch: int) -> int:
  """s = max(1, chunk // B): the copies of each of B images per forward of ~`chunk` images."""
  return max(1, chunk // batch)
