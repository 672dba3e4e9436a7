"""Saliency methods: (clf, images, labels=None, *, key=None, **options) -> f32[B,H,W].

  from salijax import methods
  maps = methods.get("gradcam")(clf, images, labels)
  maps = methods.gradcam(clf, images)   # labels=None: each image's predicted class
  maps = methods.rise(clf, images, labels, key=jax.random.key(0), num_masks=4000)
  methods.info("rise").options          # the options, their defaults and checks

`salijax.methods.registry` has the shared arguments and errors;
docs/methods.md each method's definition, defaults and paper.
"""

from salijax.methods.ablation_cam import ablation_cam
from salijax.methods.blur_ig import blur_ig
from salijax.methods.controls import fake_cam, random_map
from salijax.methods.deeplift import deeplift, deeplift_shap
from salijax.methods.eigencam import eigencam
from salijax.methods.gradient_cams import gradcam, gradcam_plus_plus, layercam, xgradcam
from salijax.methods.gradient_shap import gradient_shap
from salijax.methods.guided_ig import guided_ig
from salijax.methods.iba import iba, iba_feature_stats
from salijax.methods.input_gradients import gradient, guided_backprop, guided_gradcam
from salijax.methods.input_x_gradient import input_x_gradient
from salijax.methods.integrated_gradients import integrated_gradients
from salijax.methods.kernel_shap import kernel_shap
from salijax.methods.lime import lime
from salijax.methods.lrp import lrp
from salijax.methods.mask_search import MaskSearch, mask_search, mask_search_with_objective
from salijax.methods.occlusion import occlusion
from salijax.methods.registry import Method, MethodInfo, Option, get, info, names, register
from salijax.methods.rise import rise
from salijax.methods.score_cam import score_cam
from salijax.methods.sidu import sidu, sidu_feature_space
from salijax.methods.smoothgrad import smoothgrad
from salijax.methods.xrai import xrai

__all__ = ["MaskSearch", "Method", "MethodInfo", "Option", "ablation_cam", "blur_ig", "deeplift",
           "deeplift_shap", "eigencam", "fake_cam", "get", "gradcam", "gradcam_plus_plus",
           "gradient", "gradient_shap", "guided_backprop", "guided_gradcam", "guided_ig", "iba",
           "iba_feature_stats", "info", "input_x_gradient", "integrated_gradients", "kernel_shap",
           "layercam", "lime", "lrp", "mask_search", "mask_search_with_objective", "names",
           "occlusion", "random_map", "register", "rise", "score_cam", "sidu",
           "sidu_feature_space", "smoothgrad", "xgradcam", "xrai"]
