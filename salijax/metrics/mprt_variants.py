"""Two repairs of the model-parameter randomisation test (Hedstrom, Weber, Lapuschkin, Hohne,
"Sanity Checks Revisited: An Exploration to Repair the Model Parameter Randomisation Test",
XAI in Action workshop, NeurIPS 2023, arXiv:2401.06465).

Both re-draw the model's parameter groups as `salijax.metrics.parameter_randomization`
does (fresh leaves from `fold_in(key, 0)`: `init`, the framework's
initialisers or a permutation; `batch_stats` as there), and give the method
the key `fold_in(key, 1)` for every model, so only the weights differ.

smooth_mprt (sMPRT): MPRT with explanations denoised by averaging over noisy
copies of the image, so that noise in the method's maps does not pass for a
reaction to the randomisation:

  S(m, I) = (1/N) sum_{n<N} L_m(I + sigma z_n),   sigma = noise_magnitude (max I - min I)

z_n ~ N(0, 1)^{H x W x 3} from `fold_in(fold_in(key, 2), n)`, shared by the
images of the batch (each scaled by its own sigma) and by every model; the
last copy is the image itself (z_{N-1} = 0), as Quantus. The noisy copies are
not clipped to [0, 1] (as SmoothGrad's). With `absolute` (default) the
smoothed maps are |S|. `similarity[measure][k]` compares S of the trained
model with S of the model after randomisation step k (cascading from the
logits down by default, or `blocks` in the order given; "independent": one
block at a time); lower is better. `mean_similarity` averages over the steps
(Quantus's return_average_correlation). Defaults: N = 50, noise_magnitude =
0.1, Spearman (Quantus's).

efficient_mprt (eMPRT): the complexity of the explanation of the fully
randomised model (every group re-drawn) relative to the trained model's:

  H(L) = -sum_k p_k log p_k,  p = the histogram of the map's values in n_bins
         equal bins over [min L, max L] (numpy's `histogram`: the last bin
         includes max L; a constant map: [L - 0.5, L + 0.5]), normalised
  relative_change = (H(L_random) - H(L_trained)) / H(L_trained)   (higher is better;
                    inf or NaN where the trained map is constant, H = 0, as in Quantus)

A method that explains the model produces noisier, more complex maps of a
random model. Default n_bins = 100 (Quantus's default when no binning rule is
given).

Quantus 0.6.0 re-initialises torch layers with their own `reset_parameters`
after `torch.manual_seed(seed + 1)`; the tests give salijax the same weights
through `init` and compare the rest exactly. Its SmoothMPRT explains with
`quantus.explain` (not the `explain_func`), draws the noise from numpy's
global generator, and normalises the smoothed maps by the batch's maximum
(no effect on the rank and min-max normalised measures); its EfficientMPRT
histograms the maps as they come (abs=False, normalise=False by default).

    smooth = smooth_mprt(methods.gradient, clf, images, labels, key=key)
    smooth.similarity["spearman"]        # f32[num_blocks, B]
    efficient = efficient_mprt(methods.gradient, clf, images, labels, key=key)
    efficient.relative_change            # f32[B]
"""

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import takes_compute_dtype
from salijax.metrics import parameter_randomization
from salijax.metrics.random_logit import (
    SIMILARITIES,
    explain,
    resolve_method,
    resolve_similarity,
)

MODES = ("cascading", "independent")


class SmoothMPRT(NamedTuple):
  """The result of `smooth_mprt`; dicts are keyed by similarity measure."""

  block_names: tuple[str, ...]  # the randomisation steps, in order
  similarity: dict[str, jax.Array]  # f32[num_blocks, B], smoothed maps: randomised vs trained
  mean_similarity: dict[str, jax.Array]  # f32[B], the mean over the steps


class EfficientMPRT(NamedTuple):
  """The result of `efficient_mprt` (see the module doc)."""

  original_complexity: jax.Array  # f32[B], H of the trained model's maps
  randomized_complexity: jax.Array  # f32[B], H of the fully randomised model's maps
  relative_change: jax.Array  # f32[B], (randomized - original) / original, higher is better


@functools.partial(jax.jit, static_argnames=("n_bins",))
def discrete_entropy(maps: jax.Array, n_bins: int) -> jax.Array:
  """f32[B,H,W] -> f32[B]: the entropy (nats) of each map's histogram of n_bins (module doc)."""
  values = maps.reshape(maps.shape[0], -1)
  low, high = values.min(axis=1), values.max(axis=1)
  flat = high == low
  low, high = jnp.where(flat, low - 0.5, low), jnp.where(flat, high + 0.5, high)
  edges = jax.vmap(lambda lo, hi: jnp.linspace(lo, hi, n_bins + 1))(low, high)  # f32[B,n+1]
  bins = jax.vmap(lambda e, v: jnp.searchsorted(e, v, side="right"))(edges, values) - 1
  bins = jnp.clip(bins, 0, n_bins - 1)  # the last bin holds max L
  counts = jax.vmap(lambda b: jnp.zeros(n_bins, jnp.float32).at[b].add(1.0))(bins)
  p = counts / values.shape[1]
  return -jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0).sum(axis=1)


def _check_common(method: Any, clf: Classifier, images: Any, labels: Any, key: Any,
                  method_options: Mapping[str, Any] | None
                  ) -> tuple[Callable[..., Any], jax.Array, jax.Array, dict[str, Any]]:
  method = resolve_method(method)
  validation.check_key(key)
  labels = jnp.asarray(validation.checked_labels(clf, images, labels), jnp.int32)
  if method_options is not None and not isinstance(method_options, Mapping):
    raise TypeError(f"method_options must be a mapping of option names to values, got"
                    f" {type(method_options).__name__}")
  return method, jnp.asarray(images, jnp.float32), labels, dict(method_options or {})


@takes_compute_dtype
def efficient_mprt(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                   key: jax.Array, n_bins: int = 100,
                   init: Callable[[jax.Array], Any] | None = None,
                   batch_stats: str = "reset",
                   method_options: Mapping[str, Any] | None = None) -> EfficientMPRT:
  """The change of the maps' histogram entropy when every parameter group is re-drawn.

  Args:
    method: a saliency method `(clf, images, labels, *, key, **options) ->
      f32[B,H,W]` or its registered name.
    clf: the trained Classifier (not modified).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained (the same for both models); None = the
      trained model's prediction.
    key: a PRNG key (module doc).
    n_bins: the histogram's bins (>= 1).
    init: None, or key -> fresh variables of `clf`'s tree (`fresh_variables`).
    batch_stats: "reset" or "keep" (`parameter_randomization`).
    method_options: keyword options of the method.

  Returns:
    EfficientMPRT of f32[B].

  Raises:
    ValueError: bad images, labels, n_bins, batch_stats; maps of the wrong shape.
    TypeError: a bad method, clf, key, init or method_options.
  """
  method, images, labels, options = _check_common(method, clf, images, labels, key,
                                                  method_options)
  validation.check_positive_int(n_bins, "n_bins")
  steps = parameter_randomization.cascading_randomization(
      clf, images, jax.random.fold_in(key, 0), init=init, batch_stats=batch_stats)
  *_, (_, randomized) = steps  # the last step: every group re-drawn
  method_key = jax.random.fold_in(key, 1)
  original = discrete_entropy(explain(method, clf, images, labels, method_key, options),
                              int(n_bins))
  random = discrete_entropy(explain(method, randomized, images, labels, method_key, options),
                            int(n_bins))
  return EfficientMPRT(original_complexity=original, randomized_complexity=random,
                       relative_change=(random - original) / original)


def _smoothed(method: Callable[..., Any], options: dict[str, Any], images: jax.Array,
              labels: jax.Array, key: jax.Array, num_samples: int, noise_magnitude: float,
              per_call: int, absolute: bool) -> Callable[[Classifier], jax.Array]:
  """The function model -> S(model, images) f32[B,H,W] (module doc), `per_call` copies of
  each image per call of the method (vmapped)."""
  noise_key, method_key = jax.random.fold_in(key, 2), jax.random.fold_in(key, 1)
  spread = images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3))
  sigma = (noise_magnitude * spread)[:, None, None, None]  # f32[B,1,1,1]
  calls = math.ceil(num_samples / per_call)
  samples = jnp.arange(calls * per_call, dtype=jnp.int32).reshape(calls, per_call)

  def smoothed(model: Classifier) -> jax.Array:
    def one(sample: jax.Array) -> jax.Array:  # f32[B,H,W], weighted 1/N (0 beyond N)
      z = jax.random.normal(jax.random.fold_in(noise_key, sample), images.shape[1:])
      noisy = images + jnp.where(sample < num_samples - 1, 1.0, 0.0) * sigma * z
      maps = method(model, noisy, labels, key=jax.random.fold_in(method_key, sample),
                    **options)
      return jnp.where(sample < num_samples, 1.0 / num_samples, 0.0) * maps

    def step(total: jax.Array, chunk: jax.Array) -> tuple[jax.Array, None]:
      return total + jax.vmap(one)(chunk).sum(axis=0), None

    total, _ = jax.lax.scan(step, jnp.zeros(images.shape[:3], jnp.float32), samples)
    return jnp.abs(total) if absolute else total

  return jax.jit(smoothed)


@takes_compute_dtype
def smooth_mprt(method: Any, clf: Classifier, images: Any, labels: Any = None, *,
                key: jax.Array, num_samples: int = 50, noise_magnitude: float = 0.1,
                blocks: Sequence[str] | None = None, mode: str = "cascading",
                init: Callable[[jax.Array], Any] | None = None, batch_stats: str = "reset",
                measures: Sequence[str] = ("spearman",), absolute: bool = True,
                sample_chunk: int = 10,
                method_options: Mapping[str, Any] | None = None) -> SmoothMPRT:
  """Model-parameter randomisation of noise-averaged explanations (see the module doc).

  Args:
    method: a saliency method `(clf, images, labels, *, key, **options) ->
      f32[B,H,W]` or its registered name; it must be traceable (called on
      noisy copies inside a compiled loop).
    clf: the trained Classifier (not modified).
    images: f32[B,H,W,3] in [0, 1].
    labels: i32[B], the class explained for every model; None = the trained
      model's prediction.
    key: a PRNG key (module doc).
    num_samples: N >= 1 copies per map (the last one noise-free).
    noise_magnitude: sigma over each image's value range (>= 0).
    blocks, mode, init, batch_stats: as `parameter_randomization`
      (`cascading_randomization` / `independent_randomization`).
    measures: names among `random_logit.SIMILARITIES` (Spearman by default).
    absolute: compare |S| (Quantus's default abs=True).
    sample_chunk: copies of each image per call of the method; changes
      memory and speed, not the result.
    method_options: keyword options of the method.

  Returns:
    SmoothMPRT with one entry per measure.

  Raises:
    ValueError: bad images, labels, mode, measures, blocks, num_samples,
      noise_magnitude or sample_chunk; maps of the wrong shape.
    TypeError: a bad method, clf, key, init or method_options.
  """
  method, images, labels, options = _check_common(method, clf, images, labels, key,
                                                  method_options)
  validation.check_positive_int(num_samples, "num_samples")
  validation.check_positive_int(sample_chunk, "sample_chunk")
  number = isinstance(noise_magnitude, (int, float)) and not isinstance(noise_magnitude, bool)
  if not number or not 0 <= noise_magnitude < math.inf:
    raise ValueError(f"noise_magnitude must be a finite number >= 0, got {noise_magnitude!r}")
  if mode not in MODES:
    raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
  if isinstance(measures, str) or not measures or any(
      m not in SIMILARITIES for m in measures):
    raise ValueError(f"measures must be a non-empty sequence of names among"
                     f" {list(SIMILARITIES)}, got {measures!r}")
  similarities = {name: resolve_similarity(name) for name in measures}
  explain(method, clf, images, labels, jax.random.fold_in(key, 1), options)  # checks the maps
  randomize = (parameter_randomization.cascading_randomization if mode == "cascading"
               else parameter_randomization.independent_randomization)
  steps = randomize(clf, images, jax.random.fold_in(key, 0), blocks=blocks, init=init,
                    batch_stats=batch_stats)
  smoothed = _smoothed(method, options, images, labels, key, int(num_samples),
                       float(noise_magnitude), min(int(sample_chunk), int(num_samples)),
                       bool(absolute))
  trained = smoothed(clf)
  names: list[str] = []
  rows: dict[str, list[jax.Array]] = {name: [] for name in similarities}
  for block, model in steps:
    names.append(block)
    maps = smoothed(model)
    for name, measure in similarities.items():
      rows[name].append(jnp.asarray(measure(trained, maps), jnp.float32))
  similarity = {name: jnp.stack(values) for name, values in rows.items()}
  return SmoothMPRT(block_names=tuple(names), similarity=similarity,
                    mean_similarity={name: v.mean(axis=0) for name, v in similarity.items()})
