"""The CAM family at ResNet18's `layer4` against the formulas written in torch.

A randomly initialised torchvision-layout ResNet18 (experiments/torch_models.py)
is ported with salijax.porting; torch computes every map from its own
activations and autograd gradients, salijax from the port.

Images are 80 x 80 (layer4 is 3 x 3), not 64 x 64: XLA:CPU runs ResNet18 on
images of 64 px and less about 10x slower than at 72 px and more (jax 0.10.2),
which Score-CAM's 512 forwards would feel. Score-CAM, the one method with a
forward per channel, is compared on one image.
"""

import float_tolerance
import numpy as np
import pytest

from salijax import models, porting
from salijax.methods.ablation_cam import ablation_cam
from salijax.methods.eigencam import eigencam
from salijax.methods.gradient_cams import gradcam_plus_plus, layercam, xgradcam
from salijax.methods.score_cam import score_cam

# Module-scoped fixtures: one worker runs the whole group, so they are built once.
pytestmark = pytest.mark.xdist_group("torch_ported_models")

SIZE = 80
CLASSES = 10
LABELS = np.array([6, 3], np.int32)  # Grad-CAM positive on part of each image
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope="module")
def ported(torch_models):
  """(torch ResNet18, salijax Classifier at layer4, images f32[2,80,80,3])."""
  model = torch_models.build("resnet18", num_classes=CLASSES, seed=4)
  variables = porting.torchvision_to_flax(
      "resnet18", {k: v.numpy() for k, v in model.state_dict().items()})
  clf = models.classifier(models.create("resnet18", num_classes=CLASSES), variables,
                          layer="layer4")
  images = np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 3)).astype(np.float32)
  return model, clf, images


def _torch_layer4(torch, model, images):
  """Pixels f32[B,H,W,3] -> layer4 activations [B,k,h,w] (normalisation done here)."""
  x = torch.from_numpy(((images - MEAN) / STD).transpose(0, 3, 1, 2).copy())
  x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
  return model.layer4(model.layer3(model.layer2(model.layer1(x))))


def _torch_head(torch, model, feats):
  return model.fc(torch.flatten(model.avgpool(feats), 1))


def _upsample(torch, cams):
  """[B,h,w] -> [B,H,W] numpy, bilinear with half-pixel centres."""
  up = torch.nn.functional.interpolate(cams[:, None], size=(SIZE, SIZE), mode="bilinear",
                                       align_corners=False)
  return up[:, 0].detach().numpy()


def _weighted(torch, feats, weights):
  return _upsample(torch, torch.relu((weights[:, :, None, None] * feats).sum(dim=1)))


def _safe_divide(torch, numerator, denominator):
  nonzero = denominator != 0
  return torch.where(nonzero, numerator / torch.where(nonzero, denominator, 1.0), 0.0)


def _torch_gradients(torch, model, images):
  """Activations [B,k,h,w], their gradient d y_c / dA, target logits y_c [B], labels; torch."""
  feats = _torch_layer4(torch, model, images).detach().requires_grad_(True)
  logits = _torch_head(torch, model, feats)
  labels = torch.from_numpy(LABELS[:len(images)]).long()
  target = logits[torch.arange(len(images)), labels]
  (grads,) = torch.autograd.grad(target.sum(), feats)
  return feats.detach(), grads, target.detach(), labels


def _terms(torch, feats, weights):
  """The largest sum_k |w_k A^k| over the positions: what the CAM sums' rounding scales with."""
  return float((weights.abs()[:, :, None, None] * feats.abs()).sum(dim=1).max())


def _torch_maps(torch, model, images):
  """The CAMs with one forward (all but Score-CAM), the formulas in torch: name -> f32[B,H,W],
  and name -> the tolerances (rtol, atol) of the maps' float32 rounding.

  The bounds count the terms each map sums after the activations (k channels, h w positions)
  relative to their magnitudes; the activations themselves, a ResNet18 in torch and in XLA,
  differ by far less (observed: the maps within 4 eps of those magnitudes).
  """
  feats, grads, target, labels = _torch_gradients(torch, model, images)
  sums = feats.sum(dim=(2, 3))
  maps, bounds = {}, {}
  batch, channels, height, width = feats.shape
  n = channels + 2 * height * width + 8  # the weights' sums of h w terms, the maps' k terms

  alpha = _safe_divide(torch, grads ** 2, 2 * grads ** 2 + sums[:, :, None, None] * grads ** 3)
  weights = (alpha * torch.relu(grads)).sum(dim=(2, 3))
  maps["gradcam_plus_plus"] = _weighted(torch, feats, weights)
  bounds["gradcam_plus_plus"] = 0, float_tolerance.sum_atol(_terms(torch, feats, weights), n)
  weights = _safe_divide(torch, (feats * grads).sum(dim=(2, 3)), sums)
  maps["xgradcam"] = _weighted(torch, feats, weights)
  bounds["xgradcam"] = 0, float_tolerance.sum_atol(_terms(torch, feats, weights), n)
  maps["layercam"] = _upsample(torch, torch.relu((torch.relu(grads) * feats).sum(dim=1)))
  bounds["layercam"] = 0, float_tolerance.sum_atol(
      float((torch.relu(grads) * feats.abs()).sum(dim=1).max()), n)

  flat = feats.flatten(2).transpose(1, 2).double()  # [B,hw,k]
  _, singular, right = torch.linalg.svd(flat, full_matrices=False)
  projection = (flat @ right[:, 0, :, None])[..., 0]  # [B,hw]
  sign = torch.where((projection * flat.mean(dim=2)).sum(dim=1, keepdim=True) < 0, -1.0, 1.0)
  maps["eigencam"] = _upsample(torch, torch.relu(sign * projection).reshape(
      batch, height, width).float())
  # A backward stable SVD is exact for A + E, |E| <= n eps sigma_1 (n: its h w + k terms),
  # which turns v_1 by <= |E| / (sigma_1 - sigma_2) (Wedin's sin-theta theorem).
  singular = singular.numpy()
  bounds["eigencam"] = 0, max(
      float_tolerance.sum_atol(s[0], height * width + channels) * (1 + 2 * s[0] / (s[0] - s[1]))
      for s in singular)

  with torch.no_grad():
    ablated = feats[:, None] * (1 - torch.eye(channels))[None, :, :, None, None]  # [B,k,k,h,w]
    ablated_logits = _torch_head(torch, model, ablated.flatten(0, 1)).reshape(batch, channels, -1)
    drops = target[:, None] - ablated_logits[torch.arange(batch), :, labels]
    maps["ablation_cam"] = _weighted(torch, feats, drops / target[:, None])
  # Ablation-CAM's w_k = (y - y^k) / y are ill-conditioned here: y ~ 0.5 - 1 while the
  # logit's terms sum to ~30 in magnitude, and the map sums 512 of them. The worst-case bound
  # is ~20 % of the map; the observed differences are half of 1e-4 of the map's maximum.
  bounds["ablation_cam"] = 1e-4, 1e-4 * maps["ablation_cam"].max()
  return maps, bounds


def _torch_score_cam(torch, model, image):
  """Score-CAM of one image f32[H,W,3] in torch: [1,H,W]."""
  feats, _, _, labels = _torch_gradients(torch, model, image[None])
  with torch.no_grad():
    masks = torch.nn.functional.interpolate(feats, size=(SIZE, SIZE), mode="bilinear",
                                            align_corners=False)[0]  # [k,H,W]
    low = masks.amin(dim=(1, 2), keepdim=True)
    masks = _safe_divide(torch, masks - low, masks.amax(dim=(1, 2), keepdim=True) - low)
    black = np.zeros((1, SIZE, SIZE, 3), np.float32)
    baseline = torch.softmax(_torch_head(torch, model, _torch_layer4(torch, model, black)), 1)
    masked = image[None] * masks[..., None].numpy()  # [k,H,W,3]
    probs = torch.softmax(_torch_head(torch, model, _torch_layer4(torch, model, masked)), 1)
    return _weighted(torch, feats, (probs[:, labels[0]] - baseline[0, labels[0]])[None])


@pytest.fixture(scope="module")
def torch_maps(torch, ported):
  model, _, images = ported
  return _torch_maps(torch, model, images)  # (maps, bounds)


@pytest.mark.parametrize("name,method", [
    ("gradcam_plus_plus", gradcam_plus_plus), ("xgradcam", xgradcam), ("layercam", layercam),
    ("eigencam", eigencam), ("ablation_cam", ablation_cam)])
def test_matches_torch(ported, torch_maps, name, method):
  _, clf, images = ported
  want, (rtol, atol) = torch_maps[0][name], torch_maps[1][name]
  assert want.max() > 0
  got = np.asarray(method(clf, images, LABELS))
  np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def test_score_cam_matches_torch(torch, ported):
  model, clf, images = ported
  want = _torch_score_cam(torch, model, images[0])
  assert want.max() > 0
  got = np.asarray(score_cam(clf, images[:1], LABELS[:1]))
  # Weights p_k - p_0 in [-1, 1] from 513 forwards of a ResNet18 in two frameworks (no
  # division by a small logit): observed differences ~1e-5 of the map's maximum.
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * want.max())
