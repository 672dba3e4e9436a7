"""input_x_gradient, gradient_shap, occlusion and kernel_shap against Captum 0.9.0.

As captum_agreement_test.py: a randomly initialised torchvision-layout ResNet18
(experiments/torch_models.py, seed 4) ported with salijax.porting; Captum
explains the torch model behind the ImageNet normalisation, salijax the port,
at precision="highest", on 80 px images; both score the logits.

- `input_x_gradient` (reduce="none") vs `InputXGradient`;
- `gradient_shap` (reduce="none") vs `GradientShap`, Captum fed salijax's draws:
  its baseline indices (`np.random.choice`), points (`np.random.uniform`) and
  noise (`torch.normal`) are replaced by salijax's `draws` for the same samples
  (Captum draws per image and sample, image-major; salijax shares a sample's
  draws over the batch);
- `occlusion` (score="logit", reduce="none") vs `Occlusion` with
  sliding_window_shapes (3, w, w) / strides (3, s, s) (channels="all") and
  (1, w, w) / (1, s, s) (channels="each");
- `kernel_shap` (score="logit", skimage segments) vs `KernelShap` with the
  segments as `feature_mask` (relabelled 0..M-1), the image's mean colour as
  baseline (hide="mean"), and salijax's coalitions fed through
  `kernel_shap_perturb_generator`.
"""

import importlib
from unittest import mock

import captum_agreement_test as anchor
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi

from salijax import methods, models
from salijax.porting import torchvision_to_flax

pytestmark = pytest.mark.xdist_group("torch_ported_models")

SIZE = anchor.SIZE
LABELS = anchor.LABELS
# salijax.methods exports functions of these modules' names: import the modules themselves.
gradient_shap_module = importlib.import_module("salijax.methods.gradient_shap")
kernel_shap_module = importlib.import_module("salijax.methods.kernel_shap")
lime_module = importlib.import_module("salijax.methods.lime")


@pytest.fixture(scope="module")
def resnet18(torch, torch_models):
  """(torch pixel model, salijax Classifier with the same weights)."""
  model = torch_models.build("resnet18", num_classes=anchor.NUM_CLASSES, seed=4)
  variables = torchvision_to_flax("resnet18",
                                  {k: v.numpy() for k, v in model.state_dict().items()})
  return (anchor.pixel_model(torch, model),
          models.classifier(models.create("resnet18", num_classes=anchor.NUM_CLASSES),
                            variables))


@pytest.fixture(scope="module")
def images():
  return np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)


def logit_scale(clf, images):
  return float(np.abs(np.asarray(clf.apply(clf.variables, jnp.asarray(images)))).max())


def test_input_x_gradient_matches_captum(torch, captum, resnet18, images):
  model, clf = resnet18
  expected = anchor.to_numpy(captum.attr.InputXGradient(model).attribute(
      anchor.to_torch(torch, images), target=anchor.targets(torch)))
  got = np.asarray(methods.input_x_gradient(clf, images, LABELS, reduce="none"))
  anchor.assert_close(got, expected)


def test_gradient_shap_matches_captum_on_the_same_draws(torch, captum, resnet18, images):
  model, clf = resnet18
  n, noise, batch = 4, 0.05, len(images)
  baselines = np.random.default_rng(1).uniform(size=(3, SIZE, SIZE, 3)).astype(np.float32)
  key = jax.random.key(3)
  index, point, eps = (np.asarray(a) for a in gradient_shap_module.draws(
      key, jnp.arange(n), len(baselines), (SIZE, SIZE, 3)))
  calls = []

  def choice(count, size):  # Captum's baseline indices, image-major
    assert (count, size) == (len(baselines), n * batch)
    calls.append("choice")
    return np.tile(index, batch)

  def uniform(low, high, size):  # Captum's points
    assert (low, high, size) == (0.0, 1.0, n * batch)
    calls.append("uniform")
    return np.tile(point, batch).astype(np.float64)

  def normal(mean, std):  # Captum's noise
    assert mean == 0 and tuple(std.shape) == (n * batch, 3, SIZE, SIZE)
    calls.append("normal")
    return std * torch.from_numpy(np.tile(eps.transpose(0, 3, 1, 2), (batch, 1, 1, 1)))

  with mock.patch("numpy.random.choice", choice), mock.patch("numpy.random.uniform", uniform), \
      mock.patch.object(torch, "normal", normal):
    expected = anchor.to_numpy(captum.attr.GradientShap(model).attribute(
        anchor.to_torch(torch, images), baselines=anchor.to_torch(torch, baselines),
        n_samples=n, stdevs=noise, target=anchor.targets(torch)))
  assert sorted(calls) == ["choice", "normal", "uniform"]  # every draw was salijax's
  got = np.asarray(methods.gradient_shap(clf, images, LABELS, key=key, baselines=baselines,
                                         num_samples=n, noise=noise, chunk=n,
                                         reduce="none"))
  anchor.assert_close(got, expected)


@pytest.mark.parametrize("channels", ["all", "each"])
def test_occlusion_matches_captum(torch, captum, resnet18, images, channels):
  model, clf = resnet18
  window, stride = 32, 24  # 80 px: windows at 0, 24, 48 (cut off at 80)
  planes = 3 if channels == "all" else 1
  expected = anchor.to_numpy(captum.attr.Occlusion(model).attribute(
      anchor.to_torch(torch, images), sliding_window_shapes=(planes, window, window),
      strides=(planes, stride, stride), baselines=0.5, target=anchor.targets(torch),
      perturbations_per_eval=16))
  got = np.asarray(methods.occlusion(clf, images, LABELS, window=window, stride=stride,
                                     baseline=0.5, channels=channels, score="logit",
                                     reduce="none"))
  # Drops of logits: the two libraries' logits agree within ~1e-6 of their scale (1e-4
  # allowed, as captum_agreement_test); averages of drops stay within twice that.
  atol = 2e-4 * logit_scale(clf, images)
  assert np.abs(expected).max() > 20 * atol
  np.testing.assert_allclose(got, expected, rtol=0, atol=atol)


def test_kernel_shap_matches_captum_on_the_same_coalitions(torch, captum, resnet18):
  model, clf = resnet18
  # Smooth images: SLIC finds segments in them (uniform noise is one segment).
  coarse = np.random.default_rng(5).uniform(size=(1, 5, 5, 3))  # one image: Captum fits
  # one model per image anyway
  images = ndi.zoom(coarse, (1, SIZE // 5, SIZE // 5, 1), order=1).clip(0, 1).astype(np.float32)
  key, num_samples, num_segments = jax.random.key(3), 48, 16
  got = np.asarray(methods.kernel_shap(clf, images, LABELS[:1], key=key,
                                       num_samples=num_samples, num_segments=num_segments,
                                       segmentation="skimage", hide="mean", score="logit",
                                       chunk=num_samples))
  segments = lime_module._host_segments(images, num_segments, 10.0, 1.0, 10)
  columns = max(methods.slic.slic_grid(SIZE, SIZE, num_segments).size, segments.max() + 1)
  for b in range(len(images)):
    present = np.zeros(-(-columns // 32) * 32, bool)
    present[np.unique(segments[b])] = True
    assert present.sum() > 5
    keep = np.asarray(kernel_shap_module.coalitions(key, jnp.arange(num_samples),
                                                    jnp.asarray(present)))[:, present]
    relabel = np.cumsum(present) - 1  # present labels -> 0..M-1, in order

    def generator(self, original_input, keep=keep, **kwargs):
      del self, original_input
      assert kwargs["num_interp_features"] == keep.shape[1]
      for row in keep:
        yield torch.from_numpy(row[None].astype(np.int64))

    with mock.patch.object(captum.attr.KernelShap, "kernel_shap_perturb_generator", generator):
      fill = torch.from_numpy(images[b].mean(axis=(0, 1))).reshape(1, 3, 1, 1)
      expected = captum.attr.KernelShap(model).attribute(
          anchor.to_torch(torch, images[b:b + 1]), baselines=fill, target=int(LABELS[b]),
          feature_mask=torch.from_numpy(relabel[segments[b]]).long()[None, None],
          n_samples=num_samples, perturbations_per_eval=16)[0, 0].numpy()
    # phi is linear in the scores y: phi = P y with P the weighted fit's pseudo-inverse, so
    # scores within `score_atol` (2e-4 of the logits' scale, as for occlusion) give phi
    # within max_j sum_s |P_js| times that.
    w = np.where((keep.sum(1) == 0) | (keep.sum(1) == keep.shape[1]), 1e6, 1.0)
    centred = keep - w @ keep / w.sum()
    gain = np.abs(np.linalg.pinv(np.sqrt(w)[:, None] * centred) * np.sqrt(w)[None]).sum(1).max()
    atol = gain * 2e-4 * logit_scale(clf, images[b:b + 1])
    assert np.abs(expected).max() > 20 * atol
    np.testing.assert_allclose(got[b], expected, rtol=0, atol=atol)
