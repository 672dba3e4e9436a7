"""Tests of salijax.methods.sidu: the paper's SIDU and the pytorch-sidu variant."""

import functools

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
import tiny_classifiers
from skimage.transform import resize

from salijax import methods
from salijax.classifier import Classifier
from salijax.methods.sidu import sidu, sidu_feature_space

SIZE = 32
REGION = (8, 20, 8, 20)
TAU = 0.1  # random_cnn's activations: median ~0.05, 90 % quantile ~0.27


def _softmax(logits):
  e = np.exp(logits - logits.max())
  return e / e.sum()


def _upsample(mask, height, width):
  """Bilinear, half-pixel centres, edge values outside: scikit-image's order-1 resize."""
  return resize(mask.astype(np.float64), (height, width), order=1, mode="edge",
                anti_aliasing=False)


def _reference(clf, image, label, *, tau, sigma, n=None):
  """SIDU of one image as docs/methods.md#sidu writes it, one masked image at a time (float64).

  Returns the map and a bound on its float32 rounding error, n being the float32 terms from
  an image to a logit (default: _cnn's, tiny_classifiers.random_cnn_terms).
  """
  apply = jax.jit(clf.apply)
  terms = jax.jit(functools.partial(tiny_classifiers.logit_terms, clf))
  height, width, _ = image.shape
  feats = np.asarray(clf.features(clf.variables, image[None]))[0]
  h, w, channels = feats.shape
  n = tiny_classifiers.random_cnn_terms(h, w, channels) if n is None else n
  # (The masks threshold the activations: an activation within rounding of tau could flip
  # one, a change no tolerance covers. Here the closest is ~3e-5 from tau.)

  def probabilities(x):
    """P = softmax(f(x)) and its error bound: logits within dz make P within P (2 dz + ...)."""
    x = jnp.asarray(x, jnp.float32)[None]
    logits = np.asarray(apply(clf.variables, x), np.float64)[0]
    dz = float_tolerance.sum_atol(terms(x), n + 8)  # + 8: masking
    return _softmax(logits), _softmax(logits) * (2 * dz + (len(logits) + 3) * float_tolerance.EPS)

  probs, probs_atol = probabilities(image)
  masks = [_upsample(feats[..., j] > tau, height, width) for j in range(channels)]
  masked, masked_atol = zip(*[probabilities(image * m[..., None]) for m in masks], strict=True)
  similarity = [np.exp(-(probs[label] - p[label]) ** 2 / (2 * sigma ** 2)) for p in masked]
  uniqueness = np.array([sum(np.linalg.norm(p - q) for q in masked) for p in masked])
  # Errors: of SD_j through the exponent's derivative; of U_j from every P_i (and its k norms
  # of K terms), amplified by the min-max normalisation's 1 / spread.
  similarity_atol = [s * abs(probs[label] - p[label]) * (probs_atol[label] + a[label]) / sigma ** 2
                     + float_tolerance.sum_rtol(4) * s
                     for s, p, a in zip(similarity, masked, masked_atol, strict=True)]
  norms_atol = np.array([np.linalg.norm(a) for a in masked_atol])
  uniqueness_atol = (channels * norms_atol + norms_atol.sum()
                     + float_tolerance.sum_atol(uniqueness, channels * (len(probs) + 2)))
  spread = uniqueness.max() - uniqueness.min()
  if spread > 0:
    uniqueness = (uniqueness - uniqueness.min()) / spread
    uniqueness_atol = (uniqueness_atol + (1 + 2 * uniqueness) * uniqueness_atol.max()) / spread
  else:
    uniqueness, uniqueness_atol = np.ones(channels), np.zeros(channels)
  saliency = sum(s * u * m for s, u, m in zip(similarity, uniqueness, masks, strict=True))
  error = sum((sa * u + s * ua) * m for s, sa, u, ua, m in zip(
      similarity, similarity_atol, uniqueness, uniqueness_atol, masks, strict=True))
  # The map sums k terms >= 0 at feature resolution, then upsamples them (8 h + 16 roundings).
  atol = (error.max() + float_tolerance.sum_atol(saliency, channels + 8 * max(h, w) + 16))
  return saliency / channels, atol / channels


def _reference_atol(clf, images, labels, *, tau, sigma=0.25):
  """The largest rounding bound of the slow reference's maps of `images`."""
  return max(_reference(clf, image, label, tau=tau, sigma=sigma)[1]
             for image, label in zip(images, labels, strict=True))


def _random_images(batch, seed, height=SIZE, width=SIZE):
  noise = np.random.default_rng(seed).uniform(size=(batch, height, width, 3))
  return ndi.gaussian_filter(noise, (0, 2, 2, 0)).clip(0, 1).astype(np.float32)


@functools.cache
def _cnn():
  return tiny_classifiers.random_cnn(jax.random.key(3), channels=10)


def _two_regions(height, width):
  """Channel 0 sees the left half, channel 1 the right half; class 0 reads the left
  half's brightness, class 1 the right's, class 2 is a constant competitor."""
  stride = tiny_classifiers.STRIDE
  gates = np.zeros((height // stride, width // stride, 2), np.float32)
  gates[:, :width // stride // 2, 0] = 1.0
  gates[:, width // stride // 2:, 1] = 1.0

  def features(v, images):
    pooled = images.mean(axis=-1).reshape(images.shape[0], height // stride, stride,
                                          width // stride, stride).mean(axis=(2, 4))
    return pooled[..., None] * v["gates"]

  def head(v, feats, images):
    del images
    halves = feats.sum(axis=(1, 2)) / v["gates"].sum(axis=(0, 1))  # mean brightness per half
    return jnp.concatenate([6.0 * halves, jnp.full((feats.shape[0], 1), 8.0)], axis=1)

  return Classifier(variables={"gates": jnp.asarray(gates)},
                    apply=lambda v, x: head(v, features(v, x), x), features=features,
                    head=head)


def test_equals_slow_reference():
  clf, images, labels = _cnn(), _random_images(2, 0), np.array([2, 1], np.int32)
  maps = np.asarray(sidu(clf, images, labels, tau=TAU, sigma=0.25, chunk=4))  # 10 = 4+4+2
  for image, label, got in zip(images, labels, maps, strict=True):
    want, atol = _reference(clf, image, label, tau=TAU, sigma=0.25)
    np.testing.assert_allclose(got, want, rtol=0, atol=atol)


def test_equal_uniqueness_counts_as_one():
  """Two masks have equal uniqueness (both |P_0 - P_1|): L = (SD_0 M_0 + SD_1 M_1) / 2."""
  clf = _two_regions(SIZE, 48)
  images = np.full((1, SIZE, 48, 3), 0.8, np.float32)
  got = np.asarray(sidu(clf, images, np.array([0], np.int32), sigma=0.02))[0]
  # Its features mean 48 pixels, its logits sum the h w / 2 cells of a half.
  want, atol = _reference(clf, images[0], 0, tau=0.5, sigma=0.02, n=48 + 8 * 12 + 4)
  np.testing.assert_allclose(got, want, rtol=0, atol=atol)
  assert got.max() > 0.1


@pytest.mark.parametrize("channel", [None, 0])
def test_known_answer_region_classifier(channel):
  """> 80 % of the map in the region (the masks' bilinear ramps reach ~2 px beyond it)."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, REGION, channel=channel)
  images = _random_images(2, 1)
  inside = np.zeros((SIZE, SIZE), bool)
  inside[REGION[0]:REGION[1], REGION[2]:REGION[3]] = True
  for label in (0, 1):
    maps = np.asarray(sidu(clf, images, np.full(2, label, np.int32)))
    for saliency in maps:
      assert saliency.min() >= 0
      assert saliency[inside].sum() > 0.8 * saliency.sum()


def test_swapping_the_class_moves_the_map():
  """Class 0 reads the left half, class 1 the right: each map favours its own half."""
  clf = _two_regions(SIZE, 48)
  images = np.full((2, SIZE, 48, 3), 0.8, np.float32)
  left, right = np.asarray(sidu(clf, images, np.array([0, 1], np.int32), sigma=0.02))
  assert left[:, :24].sum() > 2 * left[:, 24:].sum()
  assert right[:, 24:].sum() > 2 * right[:, :24].sum()


def test_same_map_whatever_the_batch_and_the_chunk():
  clf, images, labels = _cnn(), _random_images(3, 2), np.array([0, 1, 3], np.int32)
  run = functools.partial(sidu, clf, tau=TAU)
  batch = np.asarray(run(images, labels, chunk=3))
  # Equal up to float rounding (XLA's convolutions round differently per batch size): each
  # program within the reference's bound of the exact maps.
  atol = 2 * _reference_atol(clf, images, labels, tau=TAU)
  np.testing.assert_allclose(run(images[1:2], labels[1:2], chunk=3)[0], batch[1], rtol=0,
                             atol=atol)
  for chunk in (1, 10, 64):
    np.testing.assert_allclose(run(images, labels, chunk=chunk), batch, rtol=0, atol=atol)


def _package_reference(torch, clf, images, *, tau, sigma):
  """pytorch-sidu's computation written with torch ops (NCHW), features from `clf`."""
  functional = torch.nn.functional
  batch, height, width, _ = images.shape
  feats = torch.from_numpy(np.array(clf.features(clf.variables, images))).permute(0, 3, 1, 2)
  channels, fh, fw = feats.shape[1:]
  masks = functional.interpolate((feats > tau).float(), size=(height, width), mode="bilinear",
                                 align_corners=True)  # [B,N,H,W]
  masked = images[:, None] * masks.numpy()[..., None]
  masked_feats = np.array(clf.features(clf.variables, masked.reshape(-1, height, width, 3)))
  masked_feats = torch.from_numpy(masked_feats).reshape(batch, channels, fh, fw, channels)
  masked_feats = masked_feats.permute(0, 1, 4, 2, 3)  # [B,N,c,h,w]
  difference = (masked_feats - feats[:, None]).abs().mean(dim=2)
  similarity = torch.sqrt(torch.exp(-difference ** 2 / sigma ** 2)).mean(dim=(2, 3))
  flat = masked_feats.reshape(batch * channels, channels, fh * fw).double()
  uniqueness = torch.cdist(flat, flat).mean(dim=(1, 2)).reshape(batch, channels).float()
  return ((masks * (similarity * uniqueness)[..., None, None]).sum(dim=1) / channels).numpy()


@pytest.mark.parametrize("sigma", [0.1, 0.25])
def test_feature_space_equals_the_package_computation(torch, sigma):
  clf, images = _cnn(), _random_images(2, 5, width=40)
  got = sidu_feature_space(clf, images, np.array([0, 1], np.int32), tau=TAU, sigma=sigma,
                           chunk=4)
  want = _package_reference(torch, clf, images, tau=TAU, sigma=sigma)
  # Two programs through random_cnn's features (27 + 16 + 9 k terms, activations ~1), then
  # exp(-d^2 / sigma^2), which scales errors in d by <= 2 d / sigma^2 ~ 10: ~1e-5 relative.
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_feature_space_ignores_the_label_and_differs_from_sidu():
  clf, images = _cnn(), _random_images(2, 6)
  run = functools.partial(sidu_feature_space, clf, images, tau=TAU)
  np.testing.assert_array_equal(run(np.array([0, 0], np.int32)), run(np.array([3, 2], np.int32)))
  paper = sidu(clf, images, np.array([0, 0], np.int32), tau=TAU)
  assert not np.allclose(paper, sidu(clf, images, np.array([3, 2], np.int32), tau=TAU))


def test_registered():
  assert methods.get("sidu") is sidu
  assert methods.get("sidu_feature_space") is sidu_feature_space
