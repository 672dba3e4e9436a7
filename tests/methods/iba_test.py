"""Tests of salijax.methods.iba against slow references and known answers."""

import math

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.ndimage as ndi
import tiny_classifiers
from skimage import transform

from salijax.classifier import Classifier
from salijax.methods.iba import (
    bottleneck,
    capacity,
    iba,
    iba_feature_stats,
    smooth,
)

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("iba")

SIZE = 32
# The settings of the random-CNN tests: one compiled program serves them all.
SETTINGS = {"steps": 4, "num_samples": 3, "beta": 0.3}
fitted_bottleneck = jax.jit(bottleneck, static_argnames=("steps", "num_samples", "smoothing"))


@pytest.fixture(scope="module")
def cnn():
  """A random CNN (one instance, so its programs compile once) and statistics of its features."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  stats = iba_feature_stats(clf, np.asarray(random_images(2, (12, SIZE, SIZE, 3))), batch_size=3)
  return clf, stats


def random_images(seed: int, shape: tuple[int, ...]) -> jax.Array:
  """Uniform [0, 1) images, drawn by numpy (jax.random compiles a program per shape)."""
  return jnp.asarray(np.random.default_rng(seed).uniform(size=shape), jnp.float32)


def region_box(size: int, region: tuple[int, int, int, int], margin: int = 0) -> np.ndarray:
  inside = np.zeros((size, size), bool)
  inside[max(region[0] - margin, 0):region[1] + margin,
         max(region[2] - margin, 0):region[3] + margin] = True
  return inside


@pytest.mark.parametrize("shape", [(8, 8, 3), (3, 5, 2), (2, 2, 1), (1, 4, 2)])
@pytest.mark.parametrize("sigma", [1.0, 0.5, 1.25])
def test_smoothing_is_scipy_gaussian_with_mirrored_borders(shape, sigma):
  """The authors' kernel: round(2 sigma) taps each side, torch ReflectionPad2d = scipy 'mirror'."""
  values = np.random.default_rng(0).normal(size=shape).astype(np.float32)
  radius = int(round(2 * sigma))
  want = ndi.gaussian_filter(values.astype(np.float64), sigma=(sigma, sigma, 0), mode="mirror",
                             truncate=radius / sigma)
  # Two passes of 2 radius + 1 taps (weights >= 0 summing to 1, rounded to float32).
  atol = float_tolerance.sum_atol(np.abs(values).max(), 2 * (2 * radius + 1) + 2)
  np.testing.assert_allclose(smooth(values, sigma), want, rtol=0, atol=atol)
  np.testing.assert_array_equal(smooth(values, 0.0), values)  # identity matrices: exact


def gaussian_kl(lam, activation, mean, std, xp=np):
  """KL(N(lam A + (1 - lam) mu, ((1 - lam) sigma)^2) || N(mu, sigma^2)), as written."""
  noisy_mean = lam * activation + (1 - lam) * mean
  noisy_std = (1 - lam) * std
  return (xp.log(std / noisy_std) + (noisy_std ** 2 + (noisy_mean - mean) ** 2) / (2 * std ** 2)
          - 0.5)


def test_capacity_is_the_gaussian_kl_and_never_negative():
  rng = np.random.default_rng(1)
  alpha = np.concatenate([np.linspace(-12, 12, 97), [-30.0, -17.0, 0.0, 14.0]])
  activation = rng.normal(size=(alpha.size, 7)) * 2
  mean = rng.normal(size=(1, 7))
  std = rng.uniform(0.1, 3.0, size=(1, 7))
  lam = 1 / (1 + np.exp(-alpha[:, None])) * np.ones((1, 7))
  jitted = jax.jit(capacity)
  got = np.asarray(jitted(jnp.asarray(lam, jnp.float32), jnp.asarray(1 - lam, jnp.float32),
                          jnp.asarray((activation - mean) / std, jnp.float32)))
  want = gaussian_kl(lam, activation, mean, std)
  # A few roundings of each of the KL's terms, which cancel to O(lambda^2) for small lambda;
  # the float64 reference, as written, cancels 1/2 - 1/2 (eps64 each).
  z = (activation - mean) / std
  terms = np.abs(np.log(1 - lam)) + lam * (2 - lam) / 2 + (lam * z) ** 2 / 2
  bound = 12 * float_tolerance.EPS * terms + 8 * np.finfo(np.float64).eps * (1 + terms)
  np.testing.assert_array_less(np.abs(got - want), bound)
  assert (got >= 0).all()
  # lambda = 0 lets nothing through, whatever the activation; lambda -> 1 costs ~ -log(1 - lambda).
  np.testing.assert_array_equal(jitted(np.zeros(5), np.ones(5), np.arange(5.0)), 0.0)
  # Where lambda rounds to 1 in float32 the capacity stays finite.
  wide = np.linspace(-200.0, 200.0, 41)
  assert np.isfinite(jitted(1 / (1 + np.exp(-wide)), 1 / (1 + np.exp(wide)), np.ones(41))).all()


def test_feature_stats_are_per_activation_mean_and_unbiased_std():
  """Against numpy over uneven batches; an activation constant over the images has std 0."""
  size, region = 32, (8, 16, 8, 24)
  clf = tiny_classifiers.region_classifier(size, size, region)
  images = np.asarray(random_images(3, (7, size, size, 3)))
  mean, std = iba_feature_stats(clf, images, batch_size=3)
  feats = np.asarray(clf.features(clf.variables, images), np.float64)
  assert mean.shape == std.shape == feats.shape[1:] and mean.dtype == jnp.float32
  # Activations from other programs (batches of 3), then float32 sums of 3 per batch.
  feats_atol = float_tolerance.sum_atol(feats.max(), tiny_classifiers.REGION_FEATURE_TERMS)
  np.testing.assert_allclose(mean, feats.mean(axis=0), rtol=float_tolerance.sum_rtol(4),
                             atol=feats_atol)
  np.testing.assert_allclose(std, feats.std(axis=0, ddof=1), rtol=float_tolerance.sum_rtol(8),
                             atol=2 * feats_atol)
  # The region classifier's activations are 0 outside its region, whatever the image.
  outside = ~region_box(size // 4, tuple(r // 4 for r in region))
  np.testing.assert_array_equal(np.asarray(std)[outside], 0.0)
  assert (np.asarray(std)[~outside] > 0).all()


def smooth_reference(values: jax.Array) -> jax.Array:
  """sigma = 1: a 5 x 5 Gaussian on mirror-padded f32[h,w,k] (torch ReflectionPad2d), as a loop."""
  taps = np.exp(-0.5 * np.arange(-2, 3) ** 2)
  kernel = np.outer(taps, taps) / np.outer(taps, taps).sum()
  padded = jnp.pad(values, ((2, 2), (2, 2), (0, 0)), mode="reflect")
  height, width, _ = values.shape
  return sum(kernel[dy, dx] * padded[dy:dy + height, dx:dx + width]
             for dy in range(5) for dx in range(5))


def reference_iba(clf, images, labels, key, mean, std, *, steps, num_samples, beta,
                  learning_rate=1.0, initial_alpha=5.0, min_std=0.01):
  """The paper's per-sample bottleneck, one image at a time, with a plain optax loop.

  Returns (maps f64[B,H,W], bits f64[B,h,w] at the final alpha, bits f64[B,h,w] at
  the initial alpha).
  """
  mean, std = jnp.asarray(mean), jnp.asarray(std)
  active = std > 0
  scale = jnp.maximum(std, min_std)

  @jax.jit
  def capacity_bits(alpha, feats):
    lam = smooth_reference(jax.nn.sigmoid(alpha))
    return jnp.where(active, gaussian_kl(lam, feats, mean, scale, jnp), 0.0).sum(-1) / math.log(2)

  def loss(alpha, noise, feats, copies, label):
    lam = smooth_reference(jax.nn.sigmoid(alpha))
    # Z = lambda A + (1 - lambda) eps, eps ~ N(mu, sigma^2).
    z = jnp.where(active, lam * feats + (1 - lam) * (mean + scale * noise), mean)
    cross_entropy = -jax.nn.log_softmax(clf.head(clf.variables, z, copies))[:, label].mean()
    return cross_entropy + beta * jnp.where(active, gaussian_kl(lam, feats, mean, scale, jnp),
                                            0.0).mean()

  optimizer = optax.adam(learning_rate)

  @jax.jit
  def adam_step(alpha, state, step_key, feats, copies, label):
    noise = jax.random.normal(step_key, (num_samples * feats.size,)).reshape(
        (num_samples,) + feats.shape)
    updates, state = optimizer.update(jax.grad(loss)(alpha, noise, feats, copies, label), state,
                                      alpha)
    return optax.apply_updates(alpha, updates), state

  maps, final, initial = [], [], []
  all_feats = jax.jit(clf.features)(clf.variables, images)
  for b in range(images.shape[0]):
    feats = all_feats[b]
    copies = np.repeat(np.asarray(images[b:b + 1]), num_samples, axis=0)
    alpha = np.full(feats.shape, initial_alpha, np.float32)
    initial.append(np.asarray(capacity_bits(alpha, feats), np.float64))
    state = optimizer.init(alpha)
    for t in range(steps):
      step_key = jax.random.fold_in(jax.random.fold_in(key, b), t)
      alpha, state = adam_step(alpha, state, step_key, feats, copies, labels[b])
    final.append(np.asarray(capacity_bits(alpha, feats), np.float64))
    maps.append(transform.resize(final[-1], images.shape[1:3], order=1, mode="edge",
                                 anti_aliasing=False))
  return np.stack(maps), np.stack(final), np.stack(initial)


def iba_atol(maps: np.ndarray) -> float:
  """How far two programs' IBA maps (SETTINGS, random_cnn at SIZE) may differ: each Adam step
  rounds the head (h w + k terms), the smoothing (5 + 5 taps) and the capacity's terms, the
  errors taken relative to the map's maximum (an optimisation: no running bound at hand).
  Adam's steps m / sqrt(v) do not grow the gradients' relative errors."""
  h = w = SIZE // tiny_classifiers.STRIDE
  return float_tolerance.sum_atol(np.max(maps), SETTINGS["steps"] * (h * w + 6 + 10 + 12))


def test_matches_per_image_optax_reference_and_batch_statistics(cnn):
  clf, stats = cnn
  images = random_images(1, (3, SIZE, SIZE, 3))
  labels = jnp.array([2, 0, 3])
  key = jax.random.key(4)
  got = iba(clf, images, labels, key=key, feature_stats=stats, **SETTINGS)
  assert got.shape == (3, SIZE, SIZE) and got.dtype == jnp.float32
  expected, bits, start = reference_iba(clf, images, labels, key, *stats, **SETTINGS)
  # Not the trivial answers: the optimisation moved lambda away from its start and from 0.
  assert (np.abs(bits - start).max(axis=(1, 2)) > 0.1 * start.max(axis=(1, 2))).all()
  assert (bits.max(axis=(1, 2)) > 0.01 * start.max(axis=(1, 2))).all()
  atol = iba_atol(expected)
  np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
  # feature_stats=None: each image with its own per-channel statistics over its positions.
  default = iba(clf, images, labels, key=key, **SETTINGS)
  for b in range(len(labels)):
    feats = np.asarray(clf.features(clf.variables, images[b:b + 1]), np.float64)[0]
    own = (jnp.asarray(np.broadcast_to(feats.mean(axis=(0, 1)), feats.shape), jnp.float32),
           jnp.asarray(np.broadcast_to(feats.std(axis=(0, 1)), feats.shape), jnp.float32))
    # The key of image b is fold_in(key, b): put the image at position b of a batch.
    alone = iba(clf, images, labels, key=key, feature_stats=own, **SETTINGS)[b]
    np.testing.assert_allclose(default[b], alone, rtol=0, atol=iba_atol(alone))
  # ... so an image's default map does not depend on the other images: row 1 of the same
  # program on the same numbers, bit for bit.
  others = images.at[0].set(0.25)
  np.testing.assert_array_equal(iba(clf, others, labels, key=key, **SETTINGS)[1], default[1])


def test_batch_composition_jit_and_no_recompilation(cnn):
  """With feature_stats, image b's map depends on (image, label, key, b) only."""
  clf, stats = cnn
  images = random_images(1, (3, SIZE, SIZE, 3))
  labels = jnp.array([2, 0, 3])
  key = jax.random.key(4)
  batch = iba(clf, images, labels, key=key, feature_stats=stats, **SETTINGS)
  others = images.at[0].set(random_images(5, (SIZE, SIZE, 3))).at[2].set(0.5)
  changed = iba(clf, others, jnp.array([1, 0, 1]), key=key, feature_stats=stats, **SETTINGS)
  np.testing.assert_array_equal(changed[1], batch[1])  # row 1 of the same program: bit for bit
  assert np.abs(changed[0] - batch[0]).max() > 1e-3 * float(batch.max())
  inside_jit = jax.jit(lambda x, y, k, s: iba(clf, x, y, key=k, feature_stats=s, **SETTINGS))(
      images, labels, key, stats)
  np.testing.assert_allclose(inside_jit, batch, rtol=0, atol=2 * iba_atol(batch))


def brightness_images(seed: int, count: int, size: int, low: float, high: float) -> np.ndarray:
  """Images of one random brightness in [low, high) each, with a little texture."""
  rng = np.random.default_rng(seed)
  level = rng.uniform(low, high, (count, 1, 1, 1))
  return (level * rng.uniform(0.8, 1.0, (count, size, size, 3))).astype(np.float32)


def test_known_answer_on_region_classifier():
  """Outside its region the classifier's activations are always 0 (std 0 over the data):
  no information flows there, so all the capacity lies in the region.

  With beta = 0 only the cross-entropy acts. For class 0 of a bright image, whose
  evidence the noise (drawn around darker data) removes, lambda rises above its start
  in the region; for class 1, which falls with brightness, it drops. Where neither the
  gradient (within 2 cells, the smoothing radius, of the region) nor a changed alpha
  (within 2 more) reaches, lambda stays exactly sigmoid(5).
  """
  size, region = 64, (8, 32, 16, 40)
  clf = tiny_classifiers.region_classifier(size, size, region, num_classes=2)
  stats = iba_feature_stats(clf, brightness_images(0, 16, size, 0.0, 1.0))
  images = jnp.asarray(brightness_images(1, 2, size, 0.8, 1.0))
  labels = jnp.array([0, 1])
  settings = {"steps": 10, "num_samples": 10, "smoothing": 1.0, "learning_rate": 1.0,
              "initial_alpha": 5.0, "min_std": 0.01}
  cells = region_box(size // 4, tuple(r // 4 for r in region))
  bits, _ = fitted_bottleneck(clf, images, labels, jax.random.key(0), stats, beta=10.0,
                              **settings)
  np.testing.assert_array_equal(np.asarray(bits)[:, ~cells], 0.0)
  assert (np.asarray(bits)[:, cells] > 0).all()
  _, lam = fitted_bottleneck(clf, images, labels, jax.random.key(0), stats, beta=0.0,
                             **settings)
  lam = np.asarray(lam)
  start = float(jax.nn.sigmoid(5.0))
  assert lam[0][cells].min() > start
  assert lam[1][cells].max() < start  # class 1 falls with brightness: its noise is welcome
  far = ~region_box(size // 4, tuple(r // 4 for r in region), margin=4)
  assert far.sum() > 50
  # sigmoid(5) smoothed by 5 + 5 taps whose float32 weights sum to 1 up to their roundings.
  np.testing.assert_allclose(lam[:, far], start, rtol=float_tolerance.sum_rtol(10 + 2), atol=0)


def test_known_answer_when_only_the_head_reads_the_region():
  """Every activation varies over the data, but the head reads only the region's.

  Outside the region the noise costs the cross-entropy nothing, so the capacity
  term drives lambda to ~0 there; inside, removing the (bright) evidence raises
  the cross-entropy. On this tiny model the cross-entropy is small next to the
  capacity at the paper's beta = 10 (every lambda then falls), so beta = 0.3.
  Smoothing (radius 2 cells = 8 px) spreads lambda over the region's border.
  """
  size, region = 48, (8, 32, 16, 40)
  gated = tiny_classifiers.region_classifier(size, size, region, num_classes=2)

  def features(v, images):  # the region classifier's, without the gate
    batch, stride = images.shape[0], tiny_classifiers.STRIDE
    pooled = images.reshape(batch, size // stride, stride, size // stride, stride, 3)
    return jax.nn.relu(pooled.mean(axis=(2, 4)) @ v["colour"] + v["bias"])

  def head(v, feats, images):
    del images
    evidence = 0.3 * ((feats * v["gate"]).sum(axis=(1, 2, 3)) / v["gate"].sum() - v["offset"])
    return jnp.stack([evidence, -evidence], axis=-1)

  data = brightness_images(0, 32, size, 0.0, 1.0)
  region_sums = (features(gated.variables, data) * gated.variables["gate"]).sum(axis=(1, 2, 3))
  variables = {**gated.variables, "offset": region_sums.mean() / gated.variables["gate"].sum()}
  clf = Classifier(variables=variables, apply=lambda v, x: head(v, features(v, x), x),
                   features=features, head=head)
  images = jnp.asarray(np.concatenate([brightness_images(1, 1, size, 0.8, 1.0),
                                       brightness_images(2, 1, size, 0.0, 0.2)]))
  labels = jnp.array([0, 1])
  assert (jax.nn.softmax(clf.logits(images))[jnp.arange(2), labels] > 0.9).all()
  maps = np.asarray(iba(clf, images, labels, key=jax.random.key(0),
                        feature_stats=iba_feature_stats(clf, data), beta=0.3))
  inside, near = region_box(size, region), region_box(size, region, margin=8)
  total = maps.sum(axis=(1, 2))
  assert (maps[:, inside].sum(axis=1) > 0.8 * total).all()
  assert (maps[:, near].sum(axis=1) > 0.99 * total).all()
  assert (maps[:, inside].mean(axis=1) > 50 * maps[:, ~near].max(axis=1)).all()  # seen: 150


def test_bad_feature_stats_and_stat_images():
  """IBA's own checks (the registry's shared ones are in registry_test.py)."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = random_images(0, (2, SIZE, SIZE, 3))
  labels = jnp.array([0, 1])
  key = jax.random.key(0)
  shape = (SIZE // 4, SIZE // 4, 6)
  with pytest.raises(TypeError, match="clf"):
    iba_feature_stats(clf.apply, images)
  with pytest.raises(ValueError, match="at least 2"):
    iba_feature_stats(clf, images[:1])
  for bad, error in (((jnp.zeros(shape),), TypeError), (jnp.zeros(shape), TypeError),
                     ((jnp.zeros(shape), jnp.ones((4, 4, 6))), ValueError),
                     ((jnp.zeros(shape), -jnp.ones(shape)), ValueError),
                     ((jnp.full(shape, jnp.nan), jnp.ones(shape)), ValueError),
                     ((jnp.zeros(shape, jnp.int32), jnp.ones(shape)), TypeError)):
    with pytest.raises(error, match="feature_stats"):
      iba(clf, images, labels, key=key, feature_stats=bad)
