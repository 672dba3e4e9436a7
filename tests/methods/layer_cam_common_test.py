"""What every single-pass CAM at the explained layer shares (Grad-CAM++, XGrad-CAM, LayerCAM,
Eigen-CAM): batch, jit and vmap invariance, one compiled program, the registry, bad inputs.

Each method's definition and known-answer tests are in its own test file.
"""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax import methods
from salijax.classifier import Classifier

SIZE = 32
# (registered name = module = function, its jitted core, its name in error messages,
#  the layer function it cannot do without)
CAMS = [
    ("gradcam_plus_plus", "_gradcam_plus_plus", "Grad-CAM\\+\\+", "head"),
    ("xgradcam", "_xgradcam", "XGrad-CAM", "head"),
    ("layercam", "_layercam", "LayerCAM", "head"),
    ("eigencam", "_eigencam", "Eigen-CAM", "features"),
]


def _images(seed, batch):
  return jax.random.uniform(jax.random.key(seed), (batch, SIZE, SIZE, 3))


def _module(name):
  return importlib.import_module(f"salijax.methods.{name}")


@pytest.mark.parametrize("name, core, title, needs", CAMS)
def test_batch_composition_jit_vmap_and_no_recompilation(name, core, title, needs):
  del title, needs
  method, jitted = getattr(_module(name), name), getattr(_module(name), core)
  clf = tiny_classifiers.random_cnn(jax.random.key(5))
  images, labels = _images(6, 3), jnp.array([1, 0, 2])
  batch = method(clf, images, labels)
  # Other programs, each within the rounding bound of the method's slow reference.
  atol = 2 * importlib.import_module(f"{name}_test").map_atol(clf, images, labels)
  alone = method(clf, images[1:2], labels[1:2])
  np.testing.assert_allclose(batch[1], alone[0], rtol=0, atol=atol)
  inside_jit = jax.jit(lambda x, y: method(clf, x, y))(images, labels)
  np.testing.assert_allclose(inside_jit, batch, rtol=0, atol=atol)
  one_by_one = jax.vmap(lambda x, y: method(clf, x[None], y[None])[0])(images, labels)
  np.testing.assert_allclose(one_by_one, batch, rtol=0, atol=atol)
  compiled = jitted._cache_size()
  method(clf, _images(7, 3), jnp.array([3, 3, 0]))
  assert jitted._cache_size() == compiled
  assert methods.get(name) is method


@pytest.mark.parametrize("name, core, title, needs", CAMS)
def test_bad_inputs(name, core, title, needs):
  del core
  method = getattr(_module(name), name)
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images, labels = _images(0, 2), jnp.array([0, 1])
  if needs == "head":
    missing = Classifier(variables=clf.variables, apply=clf.apply, features=clf.features)
    message = f"clf: {title} needs .*`head`"
  else:
    missing = Classifier(variables=clf.variables, apply=clf.apply, head=clf.head)
    message = f"clf: {title} needs a Classifier with `features`"
  with pytest.raises(ValueError, match=message):
    method(missing, images, labels)
  with pytest.raises(ValueError, match="labels"):
    method(clf, images, jnp.array([0, 4]))
  with pytest.raises(ValueError, match="images"):
    method(clf, images * 2.0, labels)
  with pytest.raises(ValueError, match="images"):
    method(clf, images[0], labels)
  with pytest.raises(TypeError, match="clf"):
    method(clf.apply, images, labels)
