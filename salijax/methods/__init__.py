"""Saliency methods: pure functions (clf, images, labels, *, key, ...) -> f32[B,H,W].

  from salijax import methods
  maps = methods.get("gradcam")(clf, images, labels)
  maps = methods.rise(clf, images, labels, key=jax.random.key(0), num_masks=4000)
"""

from salijax.methods.controls import fake_cam, random_map
from salijax.methods.gradcam import gradcam
from salijax.methods.lime import lime
from salijax.methods.registry import Method, get, names, register
from salijax.methods.rise import rise
from salijax.methods.sidu import sidu, sidu_feature_space

__all__ = ["Method", "fake_cam", "get", "gradcam", "lime", "names", "random_map", "register",
           "rise", "sidu", "sidu_feature_space"]
