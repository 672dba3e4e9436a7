"""The model-parameter randomisation test (Adebayo et al., NeurIPS 2018), pass or fail.

A saliency method that explains the model must change its maps when the
model's weights are re-drawn. `sanity_check` explains the images with the
trained model and with each randomised model
(`salijax.metrics.parameter_randomization`: "cascading" from the logits down,
or "independent", one block at a time), and compares each randomised map with
the trained one (`salijax.metrics.map_similarity`: Spearman, Spearman of
absolute values, SSIM, HOG correlation).

Baseline: the similarity of trained-model maps of *different* images, over
every ordered pair (i, j), i != j, of the batch: row s - 1 pairs image i with
image (i + s) mod B, s = 1..B-1 (every measure is symmetric, so each
unordered pair appears twice and the mean is the all-pairs mean). Needs B >= 2.

Rule, per measure: the method passes when the randomised maps are less
similar to the trained ones than unrelated maps are:
  cascading: mean over images of the similarity at the last block of the
    cascade (the fully randomised model when `blocks` is None)
    < mean of the baseline;
  independent: mean over blocks and images of the similarity
    < mean of the baseline.
A method that ignores the model keeps similarity 1 and fails.

Any Classifier can be checked: a model wrapped by `salijax.wrap` or one of
salijax's models (`salijax.models.classifier`). The method gets the same key
for every model (`fold_in(key, 1)`), so only the weights differ; the fresh
draw uses `fold_in(key, 0)`.

    check = sanity_check(methods.gradcam, clf, images, labels, key=jax.random.key(0))
    check.similarity["spearman"]       # f32[num_blocks, B]
    check.passed["spearman"]           # bool
"""

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import map_similarity, parameter_randomization

MODES = ("cascading", "independent")


class SanityCheck(NamedTuple):
  """The result of `sanity_check`; dicts are keyed by similarity measure."""

  block_names: tuple[str, ...]  # the randomised blocks, in order
  similarity: dict[str, jax.Array]  # f32[num_blocks, B]: randomised vs trained maps
  baseline: dict[str, jax.Array]  # f32[B - 1, B]: trained maps of images i and (i + s) mod B
  passed: dict[str, bool]  # the rule of the module doc


@takes_compute_dtype
def sanity_check(method_fn: Callable[..., Any], clf: Classifier, images: Any,
                 labels: Any = None, *, key: jax.Array,
                 blocks: Sequence[str] | None = None, mode: str = "cascading",
                 init: Callable[[jax.Array], Any] | None = None, batch_stats: str = "reset",
                 measures: Sequence[str] = tuple(map_similarity.SIMILARITIES)) -> SanityCheck:
  """Runs the model-parameter randomisation test of a saliency method (see the module doc).

  Args:
    method_fn: a method `(clf, images, labels, *, key) -> f32[B,H,W]`
      (`salijax.methods.get(name)`, with hyperparameters bound by a partial).
    clf: the trained Classifier; its layer is the explained one.
    images: f32[B,H,W,3] in [0, 1], B >= 2.
    labels: i32[B], the class explained for each image (the same for every
      model); None = the class the trained model predicts.
    key: a PRNG key (module doc).
    blocks: the blocks randomised, in order; None = all, from the logits down
      (`parameter_randomization.randomization_blocks`).
    mode: "cascading" or "independent".
    init: None, or key -> fresh variables of `clf`'s tree; None = the
      framework's initialisers or a permutation (`salijax.metrics.fresh_variables`).
    batch_stats: "reset" or "keep", running statistics of re-drawn blocks.
    measures: names among `map_similarity.SIMILARITIES`.

  Returns:
    SanityCheck with one entry per measure.

  Raises:
    ValueError: bad images, labels, mode, measures, blocks, or B < 2; a method
      returning maps of the wrong shape or non-finite maps; fresh variables of
      another tree.
    TypeError: a method_fn that is not callable, a bad clf, key or init.
  """
  if not callable(method_fn):
    raise TypeError(f"method_fn: expected a callable (clf, images, labels, *, key), got"
                    f" {type(method_fn).__name__}")
  if mode not in MODES:
    raise ValueError(f"mode: expected one of {list(MODES)}, got {mode!r}")
  if isinstance(measures, str) or not measures:
    raise ValueError(f"measures: expected a non-empty sequence of names among"
                     f" {list(map_similarity.SIMILARITIES)}, got {measures!r}")
  similarities = {name: map_similarity.similarity(name) for name in measures}
  validation.check_key(key)
  labels = validation.checked_labels(clf, images, labels)
  batch, height, width = images.shape[:3]
  if batch < 2:
    raise ValueError(f"images: expected B >= 2 images (the baseline pairs different images),"
                     f" got B = {batch}")
  too_small = [n for n in similarities if min(height, width) < map_similarity.MIN_MAP_SIZE[n]]
  if too_small:
    raise ValueError(f"images: {too_small} need maps of at least"
                     f" {max(map_similarity.MIN_MAP_SIZE[n] for n in too_small)} pixels a side,"
                     f" got {height} x {width}")
  images = jnp.asarray(images, jnp.float32)
  randomize = (parameter_randomization.cascading_randomization if mode == "cascading"
               else parameter_randomization.independent_randomization)
  randomized = randomize(clf, images, jax.random.fold_in(key, 0), blocks=blocks, init=init,
                         batch_stats=batch_stats)
  method_key = jax.random.fold_in(key, 1)

  def explain(model: Classifier) -> jax.Array:
    maps = method_fn(model, images, labels, key=method_key)
    validation.check_maps(maps, images, name="maps returned by method_fn")
    return jnp.asarray(maps, jnp.float32)

  trained = explain(clf)
  names: list[str] = []
  rows: dict[str, list[jax.Array]] = {name: [] for name in similarities}
  for block, block_clf in randomized:
    names.append(block)
    maps = explain(block_clf)
    for name, measure in similarities.items():
      rows[name].append(measure(trained, maps))
  similarity = {name: jnp.stack(values) for name, values in rows.items()}
  baseline = {name: jnp.stack([measure(trained, jnp.roll(trained, -shift, axis=0))
                               for shift in range(1, batch)])
              for name, measure in similarities.items()}
  passed = {}
  for name in similarities:
    randomized_mean = similarity[name][-1] if mode == "cascading" else similarity[name]
    passed[name] = bool(np.mean(randomized_mean) < np.mean(baseline[name]))
  return SanityCheck(block_names=tuple(names), similarity=similarity, baseline=baseline,
                     passed=passed)
