"""Adversarial perturbations of images, in pixel space, for robustness studies of explanations.

  from salijax import adversarial
  attacked = adversarial.fgsm(clf, images, labels, epsilon=0.03)   # f32[B,H,W,3] in [0, 1]
"""

from salijax.adversarial.fgsm import fgsm

__all__ = ["fgsm"]
