"""Visualisations of what a classifier has learnt, independent of any one input image.

  from salijax import visualisation
  result = visualisation.class_model(clf, jnp.array([3]), image_size=72)  # Simonyan et al.
  result.images           # f32[1,72,72,3] in [0, 1], the image class 3's logit likes best
  result.target_logit     # f32[1,steps+1], its logit along the optimisation
"""

from salijax.visualisation.class_model import ClassModel, class_model

__all__ = ["ClassModel", "class_model"]
