"""Tests of salijax.metrics.perturbation_curves: pixel flipping, region perturbation,
selectivity and IROF."""

import functools
import math
import warnings

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
import twin_cnn
from random_inputs import random_images

from salijax.metrics import baselines
from salijax.metrics import perturbation_curves as pc

EPS = float_tolerance.EPS


# ---------------------------------------------------------------- the slow reference


def reference_units(name, maps, height, width, *, patch_size=None, order="morf",
                    segments=None):
  """For each image: the unit of every pixel i64[H*W] and the units in removal order."""
  result = []
  for b in range(len(maps)):
    values = np.asarray(maps[b], np.float64).ravel()
    if name == "pixel_flipping":
      units = np.arange(height * width)
      result.append((units, np.argsort(-values, kind="stable")))
      continue
    if name == "irof":
      units = np.asarray(segments[b]).ravel()
      labels = sorted(set(units.tolist()))
      means = np.array([values[units == s].mean() for s in labels])
      result.append((units, np.array(labels)[np.argsort(-means, kind="stable")]))
      continue
    # Patches: the grid of the padded image, top/left padding floor(r / 2).
    top, left = ((-height) % patch_size) // 2, ((-width) % patch_size) // 2
    count_y, count_x = math.ceil(height / patch_size), math.ceil(width / patch_size)
    units = np.zeros((height, width), int)
    sums = np.zeros(count_y * count_x)
    for i in range(count_y):
      for j in range(count_x):
        for y in range(max(0, i * patch_size - top), min(height, (i + 1) * patch_size - top)):
          for x in range(max(0, j * patch_size - left),
                         min(width, (j + 1) * patch_size - left)):
            units[y, x] = i * count_x + j
            sums[i * count_x + j] += values[y * width + x]
    ranked = np.argsort(-sums if order == "morf" else sums, kind="stable")
    result.append((units.ravel(), ranked))
  return result


def reference_baseline(images, baseline, key=None):
  if baseline == "quantus_mean":
    return None  # reference_scores replaces by the mean of the image so far
  images = np.asarray(images, np.float64)
  if isinstance(baseline, float):
    return np.full_like(images, baseline)
  if baseline == "uniform":
    return np.stack([np.asarray(jax.random.uniform(jax.random.fold_in(key, b), images.shape[1:]),
                                np.float64) for b in range(len(images))])
  value = {"black": lambda x: 0.0, "white": lambda x: 1.0, "min": np.min, "max": np.max,
           "mean": np.mean}[baseline]
  return np.stack([np.full_like(x, value(x)) for x in images])


def reference_scores(clf, images, labels, baseline, units, steps, per_step, score, terms_n):
  """Every step image in numpy, one forward each: y f64[B, steps + 1] and error bounds."""
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  images = np.asarray(images, np.float64)
  batch, height, width, _ = images.shape
  scores, errors = np.zeros((batch, steps + 1)), np.zeros((batch, steps + 1))
  for b in range(batch):
    pixel_units, ranked = units[b]
    current, before = images[b].reshape(-1, 3).copy(), np.zeros(height * width, bool)
    for t in range(steps + 1):
      removed = np.isin(pixel_units, ranked[:t * per_step])
      if baseline is None:  # Quantus's "mean": of the image as perturbed so far
        current[removed & ~before] = current.mean()
        before = removed
        step = current.copy()
      else:
        step = images[b].reshape(-1, 3).copy()
        step[removed] = baseline[b].reshape(-1, 3)[removed]
      step = jnp.asarray(step.reshape(1, height, width, 3), jnp.float32)
      logits = np.asarray(apply(clf.variables, step)[0], np.float64)
      errors[b, t] = float_tolerance.sum_atol(terms(step), terms_n)
      if score == "softmax":
        logits = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        errors[b, t] = logits[labels[b]] * (2 * errors[b, t] + (len(logits) + 3) * EPS)
      scores[b, t] = logits[labels[b]]
  return scores, errors


def trapezoid(curve, n):
  return (curve[:n + 1].sum() - (curve[0] + curve[n]) / 2) / n


CASES = [
    ("pixel_flipping", dict(features_in_step=37, baseline="min", score="softmax")),
    ("pixel_flipping", dict(features_in_step=50, baseline=0.25, score="logit", auc="quantus")),
    ("pixel_flipping", dict(features_in_step=64, baseline="uniform", score="softmax")),
    ("region_perturbation", dict(patch_size=6, order="morf", regions_evaluation=7,
                                 baseline="mean", score="softmax")),
    ("region_perturbation", dict(patch_size=3, order="lerf", regions_evaluation=200,
                                 baseline="black", score="logit")),
    ("selectivity", dict(patch_size=6, baseline="white", score="softmax")),
    ("selectivity", dict(patch_size=7, baseline="max", score="logit", auc="quantus")),
    ("irof", dict(baseline="mean", score="softmax")),
    ("irof", dict(baseline=0.5, score="softmax", aoc="quantus")),
    ("pixel_flipping", dict(features_in_step=29, baseline="quantus_mean", score="softmax")),
    ("irof", dict(baseline="quantus_mean", score="logit")),
]


def reference(name, clf, images, maps, labels, key, options):
  """The slow reference of metric `name`: (scores, error bounds, units, steps)."""
  height, width = images.shape[1:3]
  units = reference_units(name, maps, height, width, patch_size=options.get("patch_size"),
                          order=options.get("order", "morf"), segments=options.get("segments"))
  if name == "pixel_flipping":
    per_step = options["features_in_step"]
    steps = math.ceil(height * width / per_step)
  else:
    per_step = 1
    steps = max(len(set(u[0].tolist())) for u in units)
    if name == "region_perturbation":
      steps = min(steps, options["regions_evaluation"])
  baseline = reference_baseline(images, options.get("baseline", "black"), key)
  terms_n = tiny_classifiers.random_cnn_terms(height // 4, width // 4) + 4
  scores, errors = reference_scores(clf, images, labels, baseline, units, steps, per_step,
                                    options.get("score", "softmax"), terms_n)
  return scores, errors, units, steps


@pytest.mark.parametrize("name,options", CASES)
def test_matches_slow_reference(name, options):
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  height, width = 16, 20
  images = random_images(1, (2, height, width, 3))
  maps = random_images(2, (2, height, width)).at[1, :4].set(0.5)  # with ties
  labels = jnp.array([3, 1])
  key = jax.random.key(3)
  segments = None
  if name == "irof":
    # Blocks of 4 x 5 pixels with labels left empty (absent segments).
    rows, cols = np.arange(height)[:, None] // 4, np.arange(width)[None] // 5
    segments = np.stack([2 * (rows * 4 + cols), (rows * 4 + cols) % 7]).astype(np.int32)
    options = dict(options, segments=segments)
  got = getattr(pc, name)(clf, images, maps, labels, key=key, chunk=5, **options)
  scores, errors, units, steps = reference(name, clf, images, maps, labels, key, options)
  atol = errors.max()
  area_atol = atol + float_tolerance.sum_atol(np.abs(scores).max(), steps + 4)
  if name == "region_perturbation":
    drops = scores[:, :1] - scores
    np.testing.assert_allclose(got.curve, drops, rtol=0, atol=2 * atol)
    np.testing.assert_allclose(got.aopc, drops.mean(axis=1), rtol=0, atol=2 * area_atol)
  elif name == "irof":
    counts = [len(set(u[0].tolist())) for u in units]
    np.testing.assert_array_equal(got.num_segments, counts)
    assert got.curve.shape == (2, int(segments.max()) + 2)
    ratios = scores / scores[:, :1]
    rel = errors / np.abs(scores)
    ratio_atol = (np.abs(ratios) * (rel + rel[:, :1] + EPS)).max()
    for b, n in enumerate(counts):
      np.testing.assert_allclose(got.curve[b, :n + 1], ratios[b, :n + 1], rtol=0,
                                 atol=ratio_atol)
      np.testing.assert_array_equal(got.curve[b, n:], np.repeat(got.curve[b, n],
                                                                got.curve.shape[1] - n))
      area = (1 - trapezoid(ratios[b], n) if options.get("aoc") != "quantus"
              else n - np.trapezoid(ratios[b, 1:n + 1]))
      sum_atol = float_tolerance.sum_atol(np.abs(ratios).max() * (n + 1), n + 4)
      np.testing.assert_allclose(got.aoc[b], area, rtol=0, atol=n * ratio_atol + sum_atol)
  else:
    np.testing.assert_allclose(got.curve, scores, rtol=0, atol=atol)
    if options.get("auc") == "quantus":
      want = [np.trapezoid(c[1:]) for c in scores]
      np.testing.assert_allclose(got.auc, want, rtol=0, atol=steps * area_atol)
    else:
      want = [trapezoid(c, steps) for c in scores]
      np.testing.assert_allclose(got.auc, want, rtol=0, atol=area_atol)


def test_patch_grid_is_centred_and_helpers():
  grid, count = pc.patch_units(5, 7, 3)
  # H = 5: pad 1 = 0 above + 1 below; W = 7: pad 2 = 1 left + 1 right.
  np.testing.assert_array_equal(grid[:, 0], [0, 0, 0, 3, 3])
  np.testing.assert_array_equal(grid[0], [0, 0, 1, 1, 1, 2, 2])
  assert count == 6
  ranks = pc.unit_ranks(jnp.array([[0.5, 2.0, 0.5, -1.0]]))
  np.testing.assert_array_equal(ranks, [[1, 0, 2, 3]])  # ties: the lower index first
  np.testing.assert_array_equal(pc.unit_ranks(jnp.array([[0.5, 2.0, 0.5, -1.0]]), False),
                                [[1, 3, 2, 0]])
  curves = jnp.array([[1.0, 0.5, 0.0, 9.0], [0.2, 0.2, 0.2, 0.2]])
  np.testing.assert_allclose(pc.trapezoid(curves, jnp.array([2, 3])), [0.5, 0.2],
                             rtol=float_tolerance.sum_rtol(8))


# ---------------------------------------------------------------- Quantus 0.6.0


def twin_inputs(seed, batch=3, size=18, smooth=False):
  rng = np.random.default_rng(seed)
  if smooth:  # 3 x 3 colour blocks, so that SLIC finds segments
    blocks = np.repeat(np.repeat(rng.uniform(size=(batch, 3, 3, 3)), size // 3, 1), size // 3, 2)
    images = np.clip(blocks + rng.normal(0, 0.03, (batch, size, size, 3)), 0, 1)
  else:
    images = rng.uniform(size=(batch, size, size, 3))
  maps = rng.normal(size=(batch, size, size))  # no ties (continuous)
  return images.astype(np.float32), maps.astype(np.float32)


def twin_errors(params, images):
  """Bounds on |probability - exact| of the twin CNN, per image, for one implementation.

  The network with |weights| on the images (>= 0: its ReLUs pass everything) gives each
  logit's sum of |terms|; n counts the terms from a pixel to a logit (conv1 27 + bias, conv2
  72 + bias, the mean over the (H/2)(W/2) features, the dense layer 12 + bias). Softmax:
  p (2 dz + (K + 3) eps) as in the slow reference.
  """
  height, width = images.shape[1:3]
  magnitudes = twin_cnn.classifier({k: np.abs(v) for k, v in params.items()})
  n = 28 + 73 + (height // 2) * (width // 2) + 13
  dz = n * EPS * np.asarray(magnitudes.logits(jnp.asarray(images))).max(axis=1)
  return 2 * dz + (len(params["fc.bias"]) + 3) * EPS


def run_quantus(quantus, torch, metric, params, images, maps, labels, **call):
  model = twin_cnn.torch_model(torch, params)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return np.asarray(metric(model=model, x_batch=images.transpose(0, 3, 1, 2).copy(),
                             y_batch=np.asarray(labels), a_batch=maps[:, None].copy(),
                             device="cpu", **call), np.float64)


PLAIN = dict(disable_warnings=True, display_progressbar=False, normalise=False, abs=False,
             return_aggregate=False)


@pytest.fixture
def numpy_trapz(monkeypatch):
  """Quantus 0.6.0 calls numpy.trapz, removed in numpy 2: numpy.trapezoid is the same rule."""
  if not hasattr(np, "trapz"):
    monkeypatch.setattr(np, "trapz", np.trapezoid, raising=False)


def test_pixel_flipping_equals_quantus(quantus, torch, numpy_trapz):
  """Quantus counts values (3 per pixel) in features_in_step; black = the image's minimum.
  Tolerance: both sides within twin_errors of the exact probabilities; the AUC sums n."""
  del numpy_trapz
  params = twin_cnn.weights(0)
  clf = twin_cnn.classifier(params)
  images, maps = twin_inputs(1)
  labels = np.array([0, 1, 2])
  atol = 2 * twin_errors(params, images).max()
  got = pc.pixel_flipping(clf, images, maps, labels, features_in_step=6, baseline="min")
  want = run_quantus(quantus, torch, quantus.PixelFlipping(features_in_step=18, **PLAIN),
                     params, images, maps, labels)
  assert want.shape == (3, 54)
  np.testing.assert_allclose(got.curve[:, 1:], want, rtol=0, atol=atol)
  got = pc.pixel_flipping(clf, images, maps, labels, features_in_step=9, baseline=0.3,
                          auc="quantus")
  want = run_quantus(quantus, torch, quantus.PixelFlipping(
      features_in_step=27, perturb_baseline=0.3, return_auc_per_sample=True, **PLAIN),
      params, images, maps, labels)
  np.testing.assert_allclose(got.auc, want, rtol=0, atol=36 * atol + 36 * 40 * EPS)
  # Quantus's "mean", recomputed after every step: salijax's recurrence of it within a
  # few roundings per step (54 steps) of Quantus's float32 means; the scores move with
  # the baseline by at most their sensitivity, here checked at 1e-5.
  got = pc.pixel_flipping(clf, images, maps, labels, features_in_step=6,
                          baseline="quantus_mean")
  want = run_quantus(quantus, torch, quantus.PixelFlipping(
      features_in_step=18, perturb_baseline="mean", **PLAIN), params, images, maps, labels)
  np.testing.assert_allclose(got.curve[:, 1:], want, rtol=0, atol=atol + 1e-5)


@pytest.mark.parametrize("order,baseline", [("morf", "min"), ("lerf", "min"),
                                            ("morf", "quantus_mean")])
def test_region_perturbation_equals_quantus(quantus, torch, order, baseline):
  """18 x 18 in patches of 4: Quantus pads to 20 x 20 (1 + 1), 25 patches, 10 evaluated.
  Quantus's "mean" is the mean of its edge-padded 20 x 20 image, after every step; the
  drifting means within 1e-5 as in test_pixel_flipping_equals_quantus."""
  params = twin_cnn.weights(1)
  clf = twin_cnn.classifier(params)
  images, maps = twin_inputs(2)
  labels = np.array([4, 1, 2])
  got = pc.region_perturbation(clf, images, maps, labels, patch_size=4, order=order,
                               regions_evaluation=10, baseline=baseline)
  want = run_quantus(quantus, torch, quantus.RegionPerturbation(
      patch_size=4, order=order, regions_evaluation=10,
      perturb_baseline="black" if baseline == "min" else "mean", **PLAIN),
      params, images, maps, labels)
  assert want.shape == (3, 10)
  # Drops: two probabilities each.
  np.testing.assert_allclose(got.curve[:, 1:], want, rtol=0,
                             atol=4 * twin_errors(params, images).max()
                             + (1e-5 if baseline == "quantus_mean" else 0))


def test_selectivity_equals_quantus(quantus, torch):
  """16 x 16 in patches of 5: Quantus pads to 20 x 20 (2 + 2), 16 patches; white = max."""
  params = twin_cnn.weights(2)
  clf = twin_cnn.classifier(params)
  images, maps = twin_inputs(3, size=16)
  labels = np.array([3, 0, 2])
  got = pc.selectivity(clf, images, maps, labels, patch_size=5, baseline="max")
  want = run_quantus(quantus, torch, quantus.Selectivity(
      patch_size=5, perturb_baseline="white", **PLAIN), params, images, maps, labels)
  assert want.shape == (3, 16)
  np.testing.assert_allclose(got.curve[:, 1:], want, rtol=0,
                             atol=2 * twin_errors(params, images).max())
  got = pc.selectivity(clf, images, maps, labels, patch_size=5, baseline="quantus_mean")
  want = run_quantus(quantus, torch, quantus.Selectivity(
      patch_size=5, perturb_baseline="mean", **PLAIN), params, images, maps, labels)
  np.testing.assert_allclose(got.curve[:, 1:], want, rtol=0,
                             atol=2 * twin_errors(params, images).max() + 1e-5)


def test_irof_equals_quantus(quantus, torch, numpy_trapz, monkeypatch):
  """Quantus segments with its own SLIC: here it gets salijax's segments, relabelled
  0..n-1 (it assumes consecutive labels), while salijax gets them with the gaps. Its
  mask-based baseline needs a mask per channel (Quantus 0.6.0 passes [B,1,H,W] for
  [B,3,H,W] images and fails): the perturb_func broadcasts it. One image per batch
  (batch_size=1): Quantus's baseline and zero-padded curves mix the images of a batch."""
  del numpy_trapz
  import quantus.metrics.faithfulness.irof as quantus_irof  # noqa: PLC0415
  from quantus.functions.perturb_func import baseline_replacement_by_mask  # noqa: PLC0415
  params = twin_cnn.weights(3)
  clf = twin_cnn.classifier(params)
  images, maps = twin_inputs(4, smooth=True)
  labels = np.asarray(clf.logits(jnp.asarray(images)).argmax(axis=1))
  segments = np.asarray(pc.slic_segments(jnp.asarray(images), num_segments=20))
  compact = iter([np.unique(s, return_inverse=True)[1].reshape(s.shape) for s in segments])
  monkeypatch.setattr(quantus_irof.utils, "get_superpixel_segments",
                      lambda img, segmentation_method: next(compact))

  def perturb(arr, mask, **kwargs):
    return baseline_replacement_by_mask(arr, np.broadcast_to(mask, arr.shape), **kwargs)

  got = pc.irof(clf, images, maps, labels, segments=segments, baseline="min", aoc="quantus")
  want = run_quantus(quantus, torch, quantus.IROF(perturb_baseline="black", perturb_func=perturb,
                                                  **PLAIN), params, images, maps, labels,
                     batch_size=1)
  counts = np.asarray(got.num_segments)
  assert (counts > 3).all() and want.shape == (3,)

  # Ratios of probabilities: relative errors add; the area sums n of them.
  probabilities = np.asarray(jax.nn.softmax(clf.logits(jnp.asarray(images))).max(axis=1))
  rel = 2 * twin_errors(params, images) / probabilities.min()
  ratios = np.abs(np.asarray(got.curve)).max(axis=1)
  atol = counts * ratios * (2 * rel + EPS) + counts * 8 * EPS * ratios
  assert (np.abs(np.asarray(got.aoc, np.float64) - want) <= atol).all(), (got.aoc, want, atol)
  # segments=None: salijax's SLIC inside the program, the same segments (sums of other lengths).
  inside = pc.irof(clf, images, maps, labels, num_segments=20, baseline="min", aoc="quantus")
  np.testing.assert_array_equal(inside.num_segments, got.num_segments)
  np.testing.assert_allclose(inside.aoc, got.aoc, rtol=0, atol=float(atol.max()))
  # Quantus's default baseline, its drifting "mean" (1e-5 as in the other tests, per ratio).
  compact = iter([np.unique(s, return_inverse=True)[1].reshape(s.shape) for s in segments])
  got = pc.irof(clf, images, maps, labels, segments=segments, baseline="quantus_mean",
                aoc="quantus")
  want = run_quantus(quantus, torch, quantus.IROF(perturb_func=perturb, **PLAIN), params,
                     images, maps, labels, batch_size=1)
  drift = counts * ratios * 1e-5 / probabilities.min()
  assert (np.abs(np.asarray(got.aoc, np.float64) - want) <= atol + drift).all(), (got.aoc, want)


# ---------------------------------------------------------------- known answers


REGION = (8, 20, 12, 28)  # 12 x 16 pixels of a 32 x 32 image


def region_setup():
  """Class 0 rises with brightness in REGION: removing it (to black) lowers its score."""
  clf = tiny_classifiers.region_classifier(32, 32, REGION, num_classes=2)
  images = random_images(3, (2, 32, 32, 3), low=0.6)
  inside = np.zeros((32, 32), np.float32)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = 1.0
  noise = 0.1 * np.asarray(random_images(4, (2, 32, 32)))
  return clf, images, jnp.asarray(inside + noise), jnp.asarray(1.0 - inside + noise)


def test_map_on_the_classifiers_region_beats_the_inverted_map():
  clf, images, good, bad = region_setup()
  labels = jnp.zeros(2, jnp.int32)
  run = lambda f, maps, **o: f(clf, images, maps, labels, **o)  # noqa: E731
  flip = functools.partial(run, pc.pixel_flipping, features_in_step=32)
  assert (flip(good).auc < flip(bad).auc).all()
  region = functools.partial(run, pc.region_perturbation, patch_size=4, regions_evaluation=12)
  assert (region(good).aopc > region(bad).aopc).all()
  # lerf removes the off-region patches first: nothing changes, the drops are 0 exactly.
  np.testing.assert_array_equal(region(good, order="lerf").curve, 0.0)
  select = functools.partial(run, pc.selectivity, patch_size=4)
  assert (select(good).auc < select(bad).auc).all()
  # Selectivity: the 12 region patches first, then the curve is final (exact: the rest is
  # gated to 0 and the same program scores it).
  curve = np.asarray(select(good).curve)
  np.testing.assert_array_equal(curve[:, 12:], curve[:, -1:].repeat(53, 1))
  blocks = np.broadcast_to((np.arange(32)[:, None] // 4) * 8 + np.arange(32)[None] // 4,
                           (2, 32, 32)).astype(np.int32)
  irof = functools.partial(run, pc.irof, segments=blocks, baseline="black")
  assert (irof(good).aoc > irof(bad).aoc).all()
  np.testing.assert_array_equal(irof(good).num_segments, [64, 64])


# ---------------------------------------------------------------- chunks, jit, errors


@pytest.mark.parametrize("name,options", [
    ("pixel_flipping", dict(features_in_step=40)),
    ("region_perturbation", dict(patch_size=4, regions_evaluation=9)),
    ("selectivity", dict(patch_size=5, baseline="uniform")),
    ("irof", dict(segments=np.broadcast_to(
        (np.arange(16)[:, None] // 4) * 4 + np.arange(16)[None] // 5, (3, 16, 16)))),
])
def test_invariant_to_chunk_and_batch_composition(name, options):
  """Other programs score the same step images: each within the slow reference's bound."""
  clf = tiny_classifiers.random_cnn(jax.random.key(5), num_classes=3)
  images = random_images(6, (3, 16, 16, 3))
  maps = random_images(7, (3, 16, 16))
  labels = jnp.array([0, 2, 1])
  metric = functools.partial(getattr(pc, name), clf, key=jax.random.key(1), **options)
  first = metric(images, maps, labels, chunk=8)
  scores, errors, _, steps = reference(name, clf, images, maps, labels, jax.random.key(1),
                                       options)
  # Both within the reference's bounds (IROF: of ratios y_t / y_0, whose relative errors
  # add); the areas are weighted means of the points, summing steps + 1 of them.
  magnitude, point_atol = np.abs(scores).max(), errors.max()
  if name == "irof":
    magnitude = magnitude / np.abs(scores).min()
    point_atol = magnitude * (2 * errors.max() / np.abs(scores).min() + EPS)
  atol = 2 * (point_atol + float_tolerance.sum_atol(magnitude, steps + 4))
  for chunk in (1, 7, 10000):
    for got, want in zip(metric(images, maps, labels, chunk=chunk), first, strict=True):
      np.testing.assert_allclose(got, want, rtol=0, atol=atol)
  if options.get("baseline") == "uniform":
    return  # the noise of a batch depends on its shape
  order = np.array([2, 0])
  if name == "irof":
    metric = functools.partial(metric, segments=options["segments"][order])
  part = metric(images[order], maps[order], labels[order], chunk=8)
  for got, want in zip(part, first, strict=True):
    np.testing.assert_allclose(got, np.asarray(want)[order], rtol=0, atol=atol)


def test_works_inside_jit_and_labels_none_is_the_prediction():
  """Under jit the values are not checked and IROF takes K = H W labels (64 here)."""
  clf = tiny_classifiers.random_cnn(jax.random.key(8), num_classes=3)
  images = random_images(9, (2, 8, 8, 3))
  maps = random_images(10, (2, 8, 8))
  segments = np.broadcast_to((np.arange(8)[:, None] // 4) * 2 + np.arange(8)[None] // 4,
                             (2, 8, 8)).astype(np.int32)
  options = {"pixel_flipping": {"features_in_step": 8}, "region_perturbation": {"patch_size": 4},
             "selectivity": {"patch_size": 4}, "irof": {}}
  predicted = jnp.asarray(clf.logits(images).argmax(axis=1))
  for name, extra in options.items():
    def call(images, maps, segments, labels=None, name=name, extra=extra):
      more = {"segments": segments} if name == "irof" else {}
      return getattr(pc, name)(clf, images, maps, labels, **extra, **more)[1]

    eager = call(images, maps, segments)
    # Other programs (other sums' orders): within a few roundings of areas of magnitude <= 1.
    np.testing.assert_allclose(jax.jit(call)(images, maps, jnp.asarray(segments)), eager,
                               rtol=0, atol=64 * 8 * EPS, err_msg=name)
    np.testing.assert_array_equal(call(images, maps, segments, predicted), eager, err_msg=name)


@pytest.mark.parametrize("name,change,error,pattern", [
    ("pixel_flipping", dict(maps=jnp.ones((2, 16, 15))), ValueError, r"maps must have shape"),
    ("pixel_flipping", dict(maps=jnp.full((2, 16, 16), jnp.nan)), ValueError, r"finite"),
    ("pixel_flipping", dict(maps=jnp.ones((2, 16, 16))), ValueError, r"constant maps"),
    ("pixel_flipping", dict(images=jnp.full((2, 16, 16, 3), 2.0)), ValueError, r"\[0, 1\]"),
    ("pixel_flipping", dict(labels=jnp.array([0, 3])), ValueError, r"labels"),
    ("pixel_flipping", dict(features_in_step=0), ValueError, r"features_in_step.*positive"),
    ("pixel_flipping", dict(baseline="grey"), ValueError, r"baseline.*'grey'"),
    ("pixel_flipping", dict(baseline=1.5), ValueError, r"baseline.*1.5"),
    ("pixel_flipping", dict(baseline=(0.1, 0.2)), ValueError, r"baseline"),
    ("pixel_flipping", dict(baseline="uniform"), TypeError, r"key is required"),
    ("pixel_flipping", dict(auc="area"), ValueError, r"auc.*'area'"),
    ("pixel_flipping", dict(score="prob"), ValueError, r"score.*'prob'"),
    ("pixel_flipping", dict(chunk=0), ValueError, r"chunk.*positive"),
    ("region_perturbation", dict(order="random"), ValueError, r"order.*'random'"),
    ("region_perturbation", dict(patch_size=17), ValueError, r"patch_size.*16.*17"),
    ("region_perturbation", dict(regions_evaluation=0), ValueError, r"regions_evaluation"),
    ("selectivity", dict(patch_size=0), ValueError, r"patch_size.*positive"),
    ("irof", dict(segments=np.zeros((2, 16, 15), np.int32)), ValueError, r"segments.*shape"),
    ("irof", dict(segments=np.zeros((2, 16, 16))), TypeError, r"segments.*integer"),
    ("irof", dict(segments=np.full((2, 16, 16), -1, np.int32)), ValueError, r"segments.*\[0"),
    ("irof", dict(aoc="auc"), ValueError, r"aoc.*'auc'"),
    ("irof", dict(num_segments=0), ValueError, r"num_segments.*positive"),
    ("irof", dict(compactness=-1.0), ValueError, r"compactness"),
])
def test_bad_inputs(name, change, error, pattern):
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  args = dict(images=random_images(0, (2, 16, 16, 3)), maps=random_images(1, (2, 16, 16)),
              labels=jnp.array([0, 1])) | change
  images, maps, labels = args.pop("images"), args.pop("maps"), args.pop("labels")
  with pytest.raises(error, match=pattern):
    getattr(pc, name)(clf, images, maps, labels, **args)


@pytest.mark.parametrize("baseline", ["blur", "mean", (0.2, 0.4, 0.6)])
def test_the_last_step_is_the_baseline_image(baseline):
  """After all pixels are flipped the step image is b itself: its score, the same program."""
  clf = tiny_classifiers.random_cnn(jax.random.key(4), num_classes=3)
  images = random_images(5, (2, 16, 16, 3))
  maps = random_images(6, (2, 16, 16))
  labels = jnp.array([2, 0])
  got = pc.pixel_flipping(clf, images, maps, labels, features_in_step=256, baseline=baseline)
  checked = baseline if isinstance(baseline, str) else tuple(baseline)
  b = baselines.baseline_images(images, checked)
  if baseline == "mean":
    np.testing.assert_allclose(b[:, 0, 0], np.broadcast_to(
        np.asarray(images).mean(axis=(1, 2, 3))[:, None], (2, 3)), rtol=float_tolerance.sum_rtol(
            16 * 16 * 3))
  if baseline == "blur":
    from salijax.metrics import substrates  # noqa: PLC0415
    np.testing.assert_array_equal(b, substrates.substrate(
        images, "blur", space="pixel", mean=(0.0, 0.0, 0.0), blur_size=11, blur_sigma=5.0,
        blur_padding="reflect"))
  want = np.asarray(jax.nn.softmax(clf.logits(b)))[np.arange(2), labels]
  # Another batch of the same images: both within the slow reference's bound of each.
  dz = float_tolerance.sum_atol(tiny_classifiers.logit_terms(clf, b),
                                tiny_classifiers.random_cnn_terms(4, 4) + 4)
  np.testing.assert_allclose(got.curve[:, -1], want, rtol=0, atol=2 * (2 * dz + 6 * EPS))
