"""Tests of salijax.compute_dtype: bfloat16 forwards, float32 maps that agree with float32's.

Agreement: bfloat16 keeps 8 significant bits, so each forward's scores carry
relative errors of ~2^-9 per rounding; maps whose values differ by more than
that keep their order, and the issue's bar is a Spearman correlation >= 0.99
per map. The images are smooth (random 4 x 4 colour grids upsampled), so
every method's map has structure at the scale of the classifiers' features,
not only rounding-level differences to rank.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers
from jax.extend import core

from salijax import methods, metrics, models
from salijax.compute_dtype import (
    CastFunction,
    compute_dtype_of,
    dtype_name,
    original,
    with_compute_dtype,
)

SIZE = 32


def smooth_images(seed: int, batch: int = 3) -> jax.Array:
  """f32[B,SIZE,SIZE,3] in [0, 1]: random 4 x 4 colour grids, bilinearly upsampled."""
  grid = jax.random.uniform(jax.random.key(seed), (batch, 4, 4, 3))
  return jax.image.resize(grid, (batch, SIZE, SIZE, 3), "linear").clip(0.0, 1.0)


def _equations(jaxpr: core.Jaxpr):
  for eqn in jaxpr.eqns:
    yield eqn
    for sub in core.jaxprs_in_params(eqn.params):
      yield from _equations(getattr(sub, "jaxpr", sub))


@pytest.mark.parametrize("arch", ["resnet18", "vgg11_bn", "efficientnet_b0",
                                  "mobilenet_v3_large", "vit_b_16"])  # each family
def test_every_convolution_and_matmul_of_the_models_runs_in_bfloat16(arch):
  """No float32 constant of a model (its normalisation, say) promotes a layer back to float32."""
  module = models.create(arch, num_classes=5)
  size = 64  # a multiple of the ViT's 16 px patches
  variables = jax.eval_shape(lambda key: models.init(module, key, image_size=size),
                             jax.random.key(0))
  clf = with_compute_dtype(models.classifier(module, variables), "bfloat16")
  images = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  closed = jax.make_jaxpr(clf.apply)(variables, images)
  layers = [eqn for eqn in _equations(closed.jaxpr)
            if eqn.primitive.name in ("conv_general_dilated", "dot_general")]
  assert layers
  assert all(x.aval.dtype == jnp.bfloat16 for eqn in layers for x in eqn.invars)
  assert [out.dtype for out in closed.out_avals] == [jnp.float32]


def test_the_functions_take_and_return_float32_and_the_variables_stay_float32():
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  cast = with_compute_dtype(clf, jnp.bfloat16)
  images = smooth_images(0)
  assert cast.variables is clf.variables
  assert compute_dtype_of(cast) == "bfloat16" and compute_dtype_of(clf) == "float32"
  feats = cast.features(cast.variables, images)
  outputs = [cast.logits(images), feats, cast.head(cast.variables, feats, images),
             cast.guided_apply(cast.variables, images)]
  assert all(out.dtype == jnp.float32 for out in outputs)
  # bfloat16 values: not float32's, and close (each rounding is within 2^-9 relative; the
  # network has three layers, so the logits stay within a few per cent).
  logits = clf.logits(images)
  difference = np.abs(np.asarray(outputs[0] - logits))
  assert 0 < difference.max() < 0.05 * np.abs(np.asarray(logits)).max()


def test_float32_gives_back_the_models_own_functions():
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  assert with_compute_dtype(clf, "float32") == clf
  cast = with_compute_dtype(clf, "float16")
  assert isinstance(cast.head, CastFunction) and original(cast.head) is clf.head
  assert with_compute_dtype(cast, "float32") == clf
  recast = with_compute_dtype(cast, "bfloat16")  # not a cast of a cast
  assert recast.apply == CastFunction(clf.apply, "bfloat16")
  no_layer = clf.replace(features=None, head=None, guided_apply=None)
  assert with_compute_dtype(no_layer, "bfloat16").features is None


def test_a_method_compiles_once_per_dtype():
  """The dtype is in the jit cache key (the Classifier's static fields), and equal casts hit."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images, labels = smooth_images(1, batch=1)[:, :24, :24], jnp.array([2])
  jitted = methods.info("gradcam").jitted
  float32 = methods.gradcam(clf, images, labels)
  before = jitted._cache_size()
  bfloat16 = methods.gradcam(clf, images, labels, compute_dtype="bfloat16")
  assert jitted._cache_size() == before + 1
  methods.gradcam(clf, images, labels, compute_dtype=jnp.bfloat16)
  methods.gradcam(with_compute_dtype(clf, "bfloat16"), images, labels)
  assert jitted._cache_size() == before + 1
  assert bfloat16.dtype == jnp.float32 and not np.array_equal(bfloat16, float32)


@pytest.mark.parametrize("value,name", [("float32", "float32"), (jnp.bfloat16, "bfloat16"),
                                        (np.float16, "float16"),
                                        (np.dtype("bfloat16"), "bfloat16")])
def test_dtypes_are_given_by_name_or_dtype(value, name):
  assert dtype_name(value) == name


@pytest.mark.parametrize("value,error", [("float64", ValueError), ("half", ValueError),
                                         (jnp.int8, ValueError), (np.float64, ValueError),
                                         (3, TypeError), (True, TypeError)])
def test_other_dtypes_are_refused_naming_the_argument(value, error):
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = smooth_images(0, batch=1)
  with pytest.raises(error, match="compute_dtype"):
    methods.gradcam(clf, images, compute_dtype=value)
  with pytest.raises(error, match="compute_dtype"):
    metrics.insertion_deletion(clf, images, images[..., 0], compute_dtype=value)


def test_a_classifier_is_required():
  with pytest.raises(TypeError, match="clf"):
    with_compute_dtype(lambda v, x: x, "bfloat16")


# The representative methods at a tiny size.
OPTIONS = {"gradcam": {}, "rise": {"num_masks": 128, "chunk": 64}, "sidu": {},
           "lime": {"num_samples": 100, "num_segments": 16},
           "integrated_gradients": {"steps": 16, "chunk": 16}, "occlusion": {}}


@pytest.mark.parametrize("name", OPTIONS)
def test_bfloat16_maps_agree_with_float32_maps_on_a_random_cnn(name):
  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images, labels = smooth_images(3), jnp.array([0, 1, 2])
  method = methods.get(name)
  float32 = method(clf, images, labels, key=jax.random.key(1), **OPTIONS[name])
  bfloat16 = method(clf, images, labels, key=jax.random.key(1), compute_dtype="bfloat16",
                    **OPTIONS[name])
  assert bfloat16.dtype == jnp.float32
  assert not np.array_equal(float32, bfloat16)  # the forwards did run in bfloat16
  assert (np.asarray(metrics.spearman(float32, bfloat16)) >= 0.99).all()


@pytest.mark.parametrize("name", ["gradcam", "rise", "sidu", "integrated_gradients"])
def test_bfloat16_maps_agree_with_float32_maps_on_the_region_classifier(name):
  """The methods whose maps are exactly 0 outside the region in both dtypes (the classifier
  ignores those pixels); LIME's and occlusion's are 0 there only up to rounding, and ranking
  rounding errors against each other measures nothing."""
  clf = tiny_classifiers.region_classifier(SIZE, SIZE, (8, 24, 4, 20))
  images, labels = smooth_images(3), jnp.array([0, 2, 0])  # class 1's Grad-CAM is all 0
  method = methods.get(name)
  float32 = method(clf, images, labels, key=jax.random.key(1), **OPTIONS[name])
  bfloat16 = method(clf, images, labels, key=jax.random.key(1), compute_dtype="bfloat16",
                    **OPTIONS[name])
  assert not np.array_equal(float32, bfloat16)
  assert (np.asarray(metrics.spearman(float32, bfloat16)) >= 0.99).all()
