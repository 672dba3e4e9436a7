"""The metrics that run the model take a compute_dtype (salijax.compute_dtype)."""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax import methods, metrics
from salijax.compute_dtype import compute_dtype_of
from salijax.metrics import catalogue
from salijax.metrics.insertion_deletion import _insertion_deletion
from salijax.pipeline import metric_calls

SIZE = 32
MODEL_METRICS = [name for name in catalogue.names()
                 if catalogue.info(name).needs_model or catalogue.info(name).needs_method]


def smooth_images(seed: int, batch: int = 3) -> jax.Array:
  """f32[B,SIZE,SIZE,3] in [0, 1]: random 4 x 4 colour grids, bilinearly upsampled."""
  grid = jax.random.uniform(jax.random.key(seed), (batch, 4, 4, 3))
  return jax.image.resize(grid, (batch, SIZE, SIZE, 3), "linear").clip(0.0, 1.0)


@pytest.mark.parametrize("name", MODEL_METRICS)
def test_every_metric_of_the_model_takes_compute_dtype(name):
  parameter = inspect.signature(getattr(metrics, name)).parameters["compute_dtype"]
  assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None
  assert "compute_dtype" not in (metric_calls.accepted_options(name) or ())


def test_the_benchmark_gives_compute_dtype_itself():
  with pytest.raises(ValueError, match="config.compute_dtype gives it"):
    metric_calls.check_options("region_perturbation", {"compute_dtype": "bfloat16"})


def test_a_method_metric_hands_the_cast_classifier_to_the_method():
  seen = []

  def method(clf, images, labels, **options):
    del labels, options
    seen.append(compute_dtype_of(clf))
    return images.mean(axis=-1)

  clf = tiny_classifiers.random_cnn(jax.random.key(0))
  images = smooth_images(0, batch=2)
  metrics.sensitivity(method, clf, images, jnp.array([0, 1]), key=jax.random.key(1),
                      num_samples=2, compute_dtype="bfloat16")
  assert seen and set(seen) == {"bfloat16"}


@pytest.mark.parametrize("classifier", ["random_cnn", "region_classifier"])
def test_bfloat16_insertion_and_deletion_aucs_are_within_0_01_of_float32(classifier):
  """The step images and their AUCs are float32; only the forwards round to bfloat16."""
  if classifier == "random_cnn":
    clf = tiny_classifiers.random_cnn(jax.random.key(0))
  else:
    clf = tiny_classifiers.region_classifier(SIZE, SIZE, (8, 24, 4, 20))
  images, labels = smooth_images(3), jnp.array([0, 1, 2])
  maps = methods.gradient(clf, images, labels)
  before = _insertion_deletion._cache_size()
  float32 = metrics.insertion_deletion(clf, images, maps, labels, step_pixels=32)
  bfloat16 = metrics.insertion_deletion(clf, images, maps, labels, step_pixels=32,
                                        compute_dtype="bfloat16")
  assert _insertion_deletion._cache_size() == before + 2  # one program per dtype
  assert bfloat16.insertion_auc.dtype == jnp.float32
  for field in ("insertion_auc", "deletion_auc"):
    difference = np.abs(np.asarray(getattr(float32, field) - getattr(bfloat16, field)))
    assert 0 < difference.max() <= 0.01
