"""Tests of salijax.metrics.insertion_deletion."""

import functools
import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import numpy_substrates
import pytest
import tiny_classifiers
from random_inputs import random_images

from salijax.metrics.insertion_deletion import (
    _insertion_deletion,
    curve_auc,
    insertion_deletion,
    num_steps,
    predicted_labels,
)

# insertion_deletion's defaults, for reference_curves.
DEFAULTS = dict(insertion_substrate="blur", deletion_substrate="mean",
                substrate_space="normalised", blur_size=11, blur_sigma=5.0,
                blur_padding="reflect", score="softmax")


def reference_curves(clf, images, maps, labels, *, step_pixels, insertion_substrate,
                     deletion_substrate, substrate_space, blur_size, blur_sigma, blur_padding,
                     score):
  """docs/metrics.md#insertion_deletion literally: every step image in numpy, one forward each.

  Returns (curves f64[2,B,T], AUCs [f64[B]] * 2) and the largest bounds on their float32
  rounding errors (random_cnn).
  """
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  images = np.asarray(images, np.float64)
  batch, height, width, _ = images.shape
  steps = math.ceil(height * width / step_pixels)
  # From a step image to a logit: random_cnn's terms, and those of the blurred substrate
  # (two passes of blur_size taps) and the normalisation.
  n = tiny_classifiers.random_cnn_terms(height // 4, width // 4) + 2 * blur_size + 8
  errors = np.zeros((2, batch, steps + 1))

  def make(name):
    return numpy_substrates.substrate(images, name, substrate_space, blur_size, blur_sigma,
                                      blur_padding)

  insertion_start, deletion_finish = make(insertion_substrate), make(deletion_substrate)
  curves = np.zeros((2, batch, steps + 1))
  for b in range(batch):
    order = np.argsort(-np.asarray(maps[b]).ravel(), kind="stable")  # ties: lower index first
    for curve, (start, finish) in enumerate([(insertion_start[b], images[b]),
                                             (images[b], deletion_finish[b])]):
      for t in range(steps + 1):
        step_image = start.copy().reshape(-1, 3)
        moved = order[:t * step_pixels]
        step_image[moved] = finish.reshape(-1, 3)[moved]
        step_image = jnp.asarray(step_image.reshape(1, height, width, 3), jnp.float32)
        logits = np.asarray(apply(clf.variables, step_image)[0], np.float64)
        # Logits within dz of exact make the probability p within p (2 dz + ...).
        errors[curve, b, t] = float_tolerance.sum_atol(terms(step_image), n)
        if score == "softmax":
          logits = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
          errors[curve, b, t] = logits[labels[b]] * (
              2 * errors[curve, b, t] + (len(logits) + 3) * float_tolerance.EPS)
        curves[curve, b, t] = logits[labels[b]]
  aucs = [(c.sum(axis=1) - c[:, 0] / 2 - c[:, -1] / 2) / steps for c in curves]
  # The AUC: a weighted mean of the curve (its errors), summing steps + 1 terms.
  auc_atol = errors.max() + float_tolerance.sum_atol(np.abs(curves).max(), steps + 4)
  return curves, aucs, errors.max(), auc_atol


@pytest.mark.parametrize("options", [
    dict(step_pixels=64, insertion_substrate="blur", deletion_substrate="mean",
         substrate_space="normalised", blur_padding="reflect", score="softmax"),
    dict(step_pixels=37, insertion_substrate="blur", deletion_substrate="zero",
         substrate_space="normalised", blur_padding="zero", score="logit"),
    dict(step_pixels=37, insertion_substrate="blur", deletion_substrate="zero",
         substrate_space="pixel", blur_padding="zero", score="softmax"),
    dict(step_pixels=50, insertion_substrate="zero", deletion_substrate="blur",
         substrate_space="pixel", blur_padding="reflect", score="logit", blur_size=5,
         blur_sigma=1.5),
    dict(step_pixels=1000, insertion_substrate="mean", deletion_substrate="blur",
         substrate_space="pixel", blur_padding="reflect", score="softmax", blur_size=27,
         blur_sigma=17.0),
    dict(step_pixels=13, insertion_substrate="zero", deletion_substrate="mean",
         substrate_space="normalised", blur_padding="reflect", score="logit", chunk=9),
])
def test_matches_slow_reference(options):
  options = dict(blur_size=11, blur_sigma=5.0, chunk=16) | options
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(1, (2, 16, 20, 3))
  maps = random_images(2, (2, 16, 20)).at[1, :4].set(0.5)  # with ties
  labels = jnp.array([3, 1])
  got = insertion_deletion(clf, images, maps, labels, **options)
  del options["chunk"]
  curves, aucs, curve_atol, auc_atol = reference_curves(clf, images, maps, labels, **options)
  steps = num_steps(16, 20, options["step_pixels"])
  assert got.insertion_curve.shape == got.deletion_curve.shape == (2, steps + 1)
  assert got.insertion_auc.shape == got.deletion_auc.shape == (2,)
  np.testing.assert_allclose(got.insertion_curve, curves[0], rtol=0, atol=curve_atol)
  np.testing.assert_allclose(got.deletion_curve, curves[1], rtol=0, atol=curve_atol)
  np.testing.assert_allclose(got.insertion_auc, aucs[0], rtol=0, atol=auc_atol)
  np.testing.assert_allclose(got.deletion_auc, aucs[1], rtol=0, atol=auc_atol)


def test_curve_auc_is_the_trapezoid_over_unit_time():
  curves = jnp.array([[1.0, 0.5, 0.0], [0.2, 0.2, 0.2]])
  # Sums of 3 and 11 terms >= 0, the halved ends, the division (and the inputs' rounding).
  np.testing.assert_allclose(curve_auc(curves), [0.5, 0.2], rtol=float_tolerance.sum_rtol(3 + 4),
                             atol=0)
  t = np.linspace(0, 1, 11)
  np.testing.assert_allclose(curve_auc(jnp.asarray(t ** 2)), np.trapezoid(t ** 2, t),
                             rtol=float_tolerance.sum_rtol(11 + 4), atol=0)


def test_num_steps():
  assert num_steps(224, 224, 224) == 224
  assert num_steps(224, 224, 500) == 101
  assert num_steps(4, 5, 21) == 1


REGION = (8, 20, 12, 28)  # 12 x 16 = 192 pixels of a 32 x 32 image


def region_setup():
  """Class 0 rises with brightness in REGION (2 classes: its probability is monotone)."""
  clf = tiny_classifiers.region_classifier(32, 32, REGION, num_classes=2)
  images = random_images(3, (2, 32, 32, 3), low=0.6)
  inside = np.zeros((32, 32), np.float32)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = 1.0
  noise = 0.1 * np.asarray(random_images(4, (2, 32, 32)))
  return clf, images, jnp.asarray(inside + noise), jnp.asarray(1.0 - inside + noise)


@pytest.mark.parametrize("insertion_substrate,substrate_space", [("zero", "pixel"),
                                                                 ("mean", "normalised")])
def test_map_on_the_classifiers_region_beats_the_inverted_map(insertion_substrate,
                                                              substrate_space):
  clf, images, region_map, inverted = region_setup()
  labels = jnp.zeros(2, jnp.int32)
  options = dict(step_pixels=32, insertion_substrate=insertion_substrate,
                 deletion_substrate="mean", substrate_space=substrate_space)
  good = insertion_deletion(clf, images, region_map, labels, **options)
  bad = insertion_deletion(clf, images, inverted, labels, **options)
  assert (good.deletion_auc < bad.deletion_auc).all()
  assert (good.insertion_auc > bad.insertion_auc).all()
  # The classifier sees only the region: once its 192 pixels moved (t >= 6), the region
  # map's curves are final; the inverted map moves them only in the last 192 pixels.
  # Exact: those steps' activations are the same numbers (the rest is gated to 0), scored
  # by the same program.
  for curve in (good.deletion_curve, good.insertion_curve):
    np.testing.assert_array_equal(curve[:, 6:], curve[:, -1:].repeat(27, 1))
  for curve in (bad.deletion_curve, bad.insertion_curve):
    np.testing.assert_array_equal(curve[:, :27], curve[:, :1].repeat(27, 1))
  assert (good.deletion_curve[:, 0] > good.deletion_curve[:, -1]).all()


def test_ties_follow_raster_order():
  """A constant map deletes in raster order: the region's first pixel (flat 268) at t = 9."""
  clf, images, _, _ = region_setup()
  result = insertion_deletion(clf, images, jnp.ones((2, 32, 32)), jnp.zeros(2, jnp.int32),
                              step_pixels=32, allow_constant_maps=True)
  first = REGION[0] * 32 + REGION[2]
  assert first == 268 and 268 < 9 * 32 and 268 >= 8 * 32
  curve = np.asarray(result.deletion_curve)
  np.testing.assert_array_equal(curve[:, :9], curve[:, :1].repeat(9, 1))
  assert (curve[:, 9] < curve[:, 0]).all()


def test_invariant_to_chunk_and_batch_composition():
  clf = tiny_classifiers.random_cnn(jax.random.key(5), num_classes=3)
  images = random_images(6, (3, 16, 16, 3))
  maps = random_images(7, (3, 16, 16))
  labels = jnp.array([0, 2, 1])
  reference = insertion_deletion(clf, images, maps, labels, step_pixels=40, chunk=8)
  # Other programs, each within the slow reference's bounds (the curves' or the AUCs').
  atol = 2 * max(reference_curves(clf, images, maps, labels, **DEFAULTS, step_pixels=40)[2:])
  for chunk in (1, 7, 10000):
    other = insertion_deletion(clf, images, maps, labels, step_pixels=40, chunk=chunk)
    for got, expected in zip(other, reference, strict=True):
      np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
  order = jnp.array([2, 0])
  part = insertion_deletion(clf, images[order], maps[order], labels[order], step_pixels=40,
                            chunk=8)
  for got, expected in zip(part, reference, strict=True):
    np.testing.assert_allclose(got, np.asarray(expected)[np.asarray(order)], rtol=0, atol=atol)
  # Any k >= H W is one step (and a huge k does not overflow the int32 thresholds).
  one_step = insertion_deletion(clf, images, maps, labels, step_pixels=256)
  huge = insertion_deletion(clf, images, maps, labels, step_pixels=10 ** 12)
  assert one_step.deletion_curve.shape == (3, 2)
  for got, expected in zip(huge, one_step, strict=True):
    np.testing.assert_array_equal(got, expected)


def test_second_batch_does_not_recompile_and_works_inside_jit_and_vmap():
  clf = tiny_classifiers.random_cnn(jax.random.key(8), num_classes=3)
  images = random_images(9, (2, 16, 16, 3))
  maps = random_images(10, (2, 2, 16, 16))  # two maps per image (e.g. two methods)
  labels = jnp.array([1, 2])
  options = dict(step_pixels=30, chunk=12)
  first = insertion_deletion(clf, images, maps[0], labels, **options)
  size = _insertion_deletion._cache_size()
  second = insertion_deletion(clf, images[::-1], maps[1], labels[::-1], **options)
  assert _insertion_deletion._cache_size() == size
  assert not np.allclose(first.deletion_curve, second.deletion_curve)

  @jax.jit
  def caller(clf, images, maps, labels):
    return insertion_deletion(clf, images, maps, labels, **options).insertion_auc

  # Other programs, each within the slow reference's bound of the AUCs.
  atol = 2 * max(reference_curves(clf, images, m, labels, **DEFAULTS, step_pixels=30)[3]
                 for m in maps)
  np.testing.assert_allclose(caller(clf, images, maps[0], labels), first.insertion_auc,
                             rtol=0, atol=atol)
  both = jax.vmap(lambda m: insertion_deletion(clf, images, m, labels, **options))(maps)
  np.testing.assert_allclose(both.deletion_auc[0], first.deletion_auc, rtol=0, atol=atol)
  np.testing.assert_allclose(both.deletion_auc[1],
                             insertion_deletion(clf, images, maps[1], labels,
                                                **options).deletion_auc, rtol=0, atol=atol)


def test_predicted_labels_are_the_argmax_of_the_logits():
  clf = tiny_classifiers.random_cnn(jax.random.key(11), num_classes=5)
  images = random_images(12, (6, 16, 16, 3))
  logits = np.asarray(clf.logits(images))
  np.testing.assert_array_equal(predicted_labels(clf, images), logits.argmax(axis=1))
  assert predicted_labels(clf, images).dtype == jnp.int32
  with pytest.raises(ValueError, match="images"):
    predicted_labels(clf, images + 1.0)
  with pytest.raises(TypeError, match="clf"):
    predicted_labels(clf.apply, images)


def test_labels_none_scores_the_predicted_classes():
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(size=16)
  maps = random_images(1, (3, 16, 16))
  predicted = jnp.argmax(clf.apply(clf.variables, images), -1)
  assert len(set(predicted.tolist())) > 1
  np.testing.assert_array_equal(predicted_labels(clf, images), predicted)
  expected = insertion_deletion(clf, images, maps, predicted, step_pixels=64)
  for got in (insertion_deletion(clf, images, maps, None, step_pixels=64),
              insertion_deletion(clf, images, maps, step_pixels=64)):
    for name, value, want in zip(expected._fields, got, expected, strict=True):
      np.testing.assert_array_equal(value, want, err_msg=name)


@pytest.mark.parametrize("change,error,pattern", [
    (dict(maps=jnp.ones((2, 16, 15))), ValueError, r"maps must have shape"),
    (dict(maps=jnp.ones((2, 16, 16, 3))), ValueError, r"maps must have shape"),
    (dict(maps=jnp.full((2, 16, 16), jnp.inf)), ValueError, r"maps must be finite"),
    (dict(maps=jnp.ones((2, 16, 16))), ValueError, r"constant maps.*\[0, 1\]"),
    (dict(labels=jnp.array([0, 3])), ValueError, r"labels.*\[0, 3\).*\[3\]"),
    (dict(labels=jnp.array([0.0, 1.0])), TypeError, r"labels"),
    (dict(images=jnp.full((2, 16, 16, 3), 2.0)), ValueError, r"images.*\[0, 1\]"),
    (dict(step_pixels=0), ValueError, r"step_pixels.*positive.*0"),
    (dict(chunk=0), ValueError, r"chunk.*positive"),
    (dict(insertion_substrate="black"), ValueError, r"insertion_substrate.*blur.*'black'"),
    (dict(deletion_substrate="noise"), ValueError, r"deletion_substrate.*'noise'"),
    (dict(substrate_space="normalized"), ValueError, r"substrate_space.*'normalized'"),
    (dict(blur_padding="edge"), ValueError, r"blur_padding.*'edge'"),
    (dict(score="prob"), ValueError, r"score.*softmax.*'prob'"),
    (dict(blur_size=10), ValueError, r"blur_size must be odd.*10"),
    (dict(blur_sigma=0.0), ValueError, r"blur_sigma.*positive.*0.0"),
    (dict(mean=(0.5, 0.5)), ValueError, r"mean must be 3 values"),
    (dict(mean=(0.5, 0.5, 2.0)), ValueError, r"mean must be 3 values"),
])
def test_bad_inputs(change, error, pattern):
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=3)
  args = dict(images=random_images(0, (2, 16, 16, 3)), maps=random_images(1, (2, 16, 16)),
              labels=jnp.array([0, 1])) | change
  images, maps, labels = args.pop("images"), args.pop("maps"), args.pop("labels")
  with pytest.raises(error, match=pattern):
    insertion_deletion(clf, images, maps, labels, **args)


def test_rejects_a_non_classifier():
  with pytest.raises(TypeError, match="clf must be a salijax.Classifier"):
    insertion_deletion(lambda v, x: x, jnp.zeros((1, 4, 4, 3)), jnp.zeros((1, 4, 4)),
                       jnp.zeros(1, jnp.int32))
