"""salijax's gradient and CAM methods against Captum's implementations on the same weights.

Captum 0.9.0 (torch) is another library's implementation of the same
definitions. A randomly initialised torchvision-layout ResNet18 and VGG11
(experiments/torch_models.py) are ported with salijax.porting; Captum
explains the torch model, salijax the port, at precision="highest":

- `gradient` vs `Saliency(abs=True)`, max over the colour channels;
- `guided_backprop` (reduce="none") vs `GuidedBackprop` (Captum overrides the
  gradient of every `nn.ReLU` module; torch_models' ResNet blocks call one
  ReLU module twice, which Captum's hooks handle);
- `integrated_gradients` (baseline 0, rule "right", reduce="none") vs
  `IntegratedGradients(method="riemann_right")`, with both completeness gaps;
- `gradcam` at ResNet18's "layer4" vs `LayerGradCam(relu_attributions=True)`,
  Captum's 3 x 3 map upsampled with Captum's own `LayerAttribution.interpolate`
  in "bilinear" mode (torch's `interpolate`, half-pixel centres: the convention
  of salijax.methods.map_ops), so that the comparison is at image size;
- `guided_gradcam` (reduce="none") vs `GuidedGradCam(interpolate_mode="bilinear")`
  (Captum's default "nearest" is not salijax's upsampling).

SmoothGrad is not compared: its Gaussian noise is drawn by each library's own
generator and cannot be shared with Captum's NoiseTunnel.

The torch models take normalised images; salijax's normalise inside. Captum gets
a torch module that normalises first, so both libraries explain the same
function of the same [0, 1] pixels. Images are 80 x 80: XLA:CPU runs these
models on images of 64 px and less about 10x slower (cam_family_torch_test.py).
"""

import float_tolerance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import models
from salijax.methods.gradient_cams import gradcam
from salijax.methods.input_gradients import gradient, guided_backprop, guided_gradcam
from salijax.methods.integrated_gradients import integrated_gradients
from salijax.porting import torchvision_to_flax

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("torch_ported_models")

MEAN = np.asarray([0.485, 0.456, 0.406], np.float32)
STD = np.asarray([0.229, 0.224, 0.225], np.float32)
NUM_CLASSES = 10
SIZE = 80
LABELS = np.asarray([6, 3], np.int32)
# On VGG11 the path point a = 1/2 of 4 steps has a near-tie (gap 4e-6) in the last
# max-pool, whose 2 x 2 output covers most of the image: torch and XLA pick different
# winners and the gradient differs at ~half the pixels (torch and Captum agree to
# 1e-6). The points 1/3, 2/3, 1 have no such tie deeper than the third pool.
IG_STEPS = 3


def pixel_model(torch, model):
  """`model` behind the ImageNet normalisation: NCHW pixels in [0, 1] -> logits."""

  class PixelModel(torch.nn.Module):

    def __init__(self):
      super().__init__()
      self.model = model
      self.register_buffer("mean", torch.from_numpy(MEAN).reshape(1, 3, 1, 1))
      self.register_buffer("std", torch.from_numpy(STD).reshape(1, 3, 1, 1))

    def forward(self, x):
      return self.model((x - self.mean) / self.std)

  return PixelModel().eval()


@pytest.fixture(scope="module", params=["resnet18", "vgg11"])
def ported(request, torch, torch_models):
  """(torch pixel model, salijax Classifier with the same weights)."""
  arch = request.param
  model = torch_models.build(arch, num_classes=NUM_CLASSES, seed=4)
  variables = torchvision_to_flax(arch, {k: v.numpy() for k, v in model.state_dict().items()})
  return (pixel_model(torch, model),
          models.classifier(models.create(arch, num_classes=NUM_CLASSES), variables))


@pytest.fixture(scope="module")
def resnet18(torch, torch_models):
  """(torch pixel model, its ResNet18, salijax Classifier at "layer4"): the CAM comparisons."""
  model = torch_models.build("resnet18", num_classes=NUM_CLASSES, seed=4)
  variables = torchvision_to_flax("resnet18",
                                  {k: v.numpy() for k, v in model.state_dict().items()})
  clf = models.classifier(models.create("resnet18", num_classes=NUM_CLASSES), variables,
                          layer="layer4")
  return pixel_model(torch, model), model, clf


@pytest.fixture(scope="module")
def images():
  return np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)


def to_torch(torch, pixels):
  """f32[B,H,W,C] numpy -> an NCHW torch tensor."""
  return torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))


def to_numpy(tensor):
  """An NCHW torch tensor -> f32[B,H,W,C] numpy."""
  return tensor.detach().numpy().transpose(0, 2, 3, 1)


def targets(torch):
  return torch.from_numpy(LABELS).long()


def assert_close(got, expected):
  """Equal within rtol = 1e-4 (atol 1e-4 of the largest value), but for near-ties.

  A random network has ReLU inputs and max-pool pairs within float rounding of a
  tie; where torch and XLA round one to opposite sides, the gradient legitimately
  differs in that unit's receptive field. Such elements may be at most 3 % of
  them and hold at most 1 % of the norm; a missed or extra guided ReLU, a wrong
  path point or a wrong weight changes far more. (With jax 0.10.2 and torch 2.13
  on x86 CPUs no element differs here: the largest error is ~2e-6 of the scale.)
  """
  assert got.shape == expected.shape
  scale = np.abs(expected).max()
  assert scale > 0.0
  mismatched = ~np.isclose(got, expected, rtol=1e-4, atol=1e-4 * scale)
  assert mismatched.mean() < 0.03, f"{mismatched.sum()} of {mismatched.size} differ"
  assert np.linalg.norm(got - expected) < 1e-2 * np.linalg.norm(expected)


def test_gradient_matches_captum_saliency(torch, captum, ported, images):
  model, clf = ported
  expected = to_numpy(captum.attr.Saliency(model).attribute(
      to_torch(torch, images), target=targets(torch), abs=True)).max(-1)
  got = np.asarray(gradient(clf, jnp.asarray(images), jnp.asarray(LABELS)))
  assert_close(got, expected)


def test_guided_backprop_matches_captum(torch, captum, ported, images):
  model, clf = ported
  expected = to_numpy(captum.attr.GuidedBackprop(model).attribute(
      to_torch(torch, images), target=targets(torch)))
  vanilla = to_numpy(captum.attr.Saliency(model).attribute(
      to_torch(torch, images), target=targets(torch), abs=False))
  # Captum's ReLU hooks acted: guided and vanilla gradients differ.
  assert np.abs(vanilla - expected).max() > 0.1 * np.abs(expected).max()
  got = np.asarray(guided_backprop(clf, jnp.asarray(images), jnp.asarray(LABELS),
                                   reduce="none"))
  assert_close(got, expected)


def test_integrated_gradients_matches_captum(torch, captum, ported, images):
  model, clf = ported
  attributions, captum_gap = captum.attr.IntegratedGradients(model).attribute(
      to_torch(torch, images), baselines=0.0, target=targets(torch), n_steps=IG_STEPS,
      method="riemann_right", return_convergence_delta=True)
  expected = to_numpy(attributions)
  got = np.asarray(integrated_gradients(clf, jnp.asarray(images), jnp.asarray(LABELS),
                                        baseline=0.0, steps=IG_STEPS, rule="right",
                                        chunk=IG_STEPS, reduce="none"))
  logits = np.asarray(clf.apply(clf.variables, jnp.asarray(images)))
  black = np.asarray(clf.apply(clf.variables, jnp.zeros_like(jnp.asarray(images))))
  assert_close(got, expected)
  # Completeness: both libraries miss y_c(I) - y_c(0) by the same quadrature error.
  rows = np.arange(len(LABELS))
  gap = got.sum(axis=(1, 2, 3)) - (logits[rows, LABELS] - black[rows, LABELS])
  scale = np.abs(logits[rows, LABELS] - black[rows, LABELS]).max()
  np.testing.assert_allclose(gap, captum_gap.detach().numpy(), rtol=1e-4, atol=1e-4 * scale)


def captum_gradcam(torch, captum, pixel_resnet, resnet, images):
  """Captum's Grad-CAM at layer4, ReLU'd, upsampled bilinearly to the images: f32[B,H,W]."""
  cams = captum.attr.LayerGradCam(pixel_resnet, resnet.layer4).attribute(
      to_torch(torch, images), target=targets(torch), relu_attributions=True)
  assert cams.shape == (len(images), 1, 3, 3)  # layer4's resolution at 80 px
  return captum.attr.LayerAttribution.interpolate(
      cams, (SIZE, SIZE), interpolate_mode="bilinear")[:, 0].detach().numpy()


def test_gradcam_matches_captum_layer_gradcam(torch, captum, resnet18, images):
  pixel_resnet, resnet, clf = resnet18
  expected = captum_gradcam(torch, captum, pixel_resnet, resnet, images)
  assert expected.max() > 0.0
  got = np.asarray(gradcam(clf, jnp.asarray(images), jnp.asarray(LABELS)))
  feats = clf.features(clf.variables, jnp.asarray(images))
  grads = jax.grad(lambda a: clf.head(clf.variables, a, jnp.asarray(images))[
      np.arange(len(LABELS)), LABELS].sum())(feats)
  # As tests/methods/gradcam_test.py's layer4 test: sum_k alpha_k A^k cancels, so its
  # rounding is bounded relative to sum_k |alpha_k A^k| (k channels, alpha averaging h w).
  _, h, w, k = feats.shape
  alpha = np.abs(np.asarray(grads, np.float64)).mean(axis=(1, 2))
  terms = np.einsum("bhwk,bk->bhw", np.abs(np.asarray(feats, np.float64)), alpha)
  np.testing.assert_allclose(got, expected, rtol=0,
                             atol=float_tolerance.sum_atol(terms, k + h * w + 8))


def test_guided_gradcam_matches_captum(torch, captum, resnet18, images):
  pixel_resnet, resnet, clf = resnet18
  expected = to_numpy(captum.attr.GuidedGradCam(pixel_resnet, resnet.layer4).attribute(
      to_torch(torch, images), target=targets(torch), interpolate_mode="bilinear"))
  got = np.asarray(guided_gradcam(clf, jnp.asarray(images), jnp.asarray(LABELS),
                                  reduce="none"))
  assert_close(got, expected)
