"""Tests of the method registry: every registered method, one call shape."""

import functools
import inspect
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_classifiers

from salijax import methods
from salijax.classifier import Classifier
from salijax.methods import registry
from salijax.methods.registry import no_pass

# Registered name -> the function exported by salijax.methods.
EXPECTED_METHODS = {
    "ablation_cam": "ablation_cam", "eigencam": "eigencam", "fake_cam": "fake_cam",
    "gradcam": "gradcam", "gradcam_plus_plus": "gradcam_plus_plus", "gradient": "gradient",
    "guided_backprop": "guided_backprop", "guided_gradcam": "guided_gradcam", "iba": "iba",
    "integrated_gradients": "integrated_gradients",
    "layercam": "layercam", "lime": "lime", "mask_search": "mask_search", "random": "random_map",
    "rise": "rise", "score_cam": "score_cam", "sidu": "sidu",
    "sidu_feature_space": "sidu_feature_space", "smoothgrad": "smoothgrad",
    "xgradcam": "xgradcam", "deeplift": "deeplift", "deeplift_shap": "deeplift_shap",
    "blur_ig": "blur_ig", "guided_ig": "guided_ig", "xrai": "xrai",
    "input_x_gradient": "input_x_gradient", "gradient_shap": "gradient_shap",
    "occlusion": "occlusion", "kernel_shap": "kernel_shap", "lrp": "lrp"}


def test_names_lists_every_method():
  assert set(methods.names()) == set(EXPECTED_METHODS)
  assert list(methods.names()) == sorted(methods.names())
  for name, function in EXPECTED_METHODS.items():
    assert methods.get(name) is getattr(methods, function)


def test_unknown_name_lists_the_registered_ones():
  with pytest.raises(ValueError, match="gradcam") as error:
    methods.get("gradcam++-typo")
  assert "gradcam++-typo" in str(error.value)
  for name in methods.names():
    assert name in str(error.value)


def test_a_name_is_registered_once():
  with pytest.raises(ValueError, match="rise"):
    methods.register("rise", title="RISE", summary="", cost=no_pass)(
        lambda clf, images, labels, key: None)
  assert methods.get("rise") is methods.rise


@pytest.mark.parametrize("name", methods.names())
def test_the_signature_shows_every_option_with_its_default(name):
  info = methods.info(name)
  parameters = inspect.signature(methods.get(name)).parameters
  assert list(parameters)[:4] == ["clf", "images", "labels", "key"]
  assert {p: parameters[p].default for p in info.options} == info.defaults()
  assert methods.get(name).__doc__  # the core's docstring


@pytest.mark.parametrize("name", methods.names())
def test_every_method_takes_the_common_call_shape(name):
  """(clf, images, labels, key=...) with the reference defaults -> f32[B,H,W], finite."""
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
  labels = jnp.array([3, 0])
  maps = methods.get(name)(clf, images, labels, key=jax.random.key(2))
  assert maps.shape == (2, 32, 32) and maps.dtype == jnp.float32
  assert np.isfinite(np.asarray(maps)).all()


# Small hyperparameters of the slower methods, for the labels=None test.
SMALL = {"integrated_gradients": dict(steps=8), "iba": dict(steps=2, num_samples=2),
         "lime": dict(num_samples=32), "mask_search": dict(num_steps=20),
         "rise": dict(num_masks=32), "smoothgrad": dict(num_samples=4),
         "blur_ig": dict(steps=4), "guided_ig": dict(steps=4), "xrai": dict(steps=4),
         "deeplift_shap": dict(num_baselines=4), "kernel_shap": dict(num_samples=32),
         "gradient_shap": dict(num_samples=4)}


@pytest.mark.parametrize("name", methods.names())
def test_labels_none_explains_the_predicted_class(name):
  """labels=None (or omitted) gives the maps of the argmax classes, bit for bit."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images()
  predicted = jnp.argmax(clf.apply(clf.variables, images), -1)
  assert len(set(predicted.tolist())) > 1  # the images are not all of one class
  method = functools.partial(methods.get(name), key=jax.random.key(2), **SMALL.get(name, {}))
  expected = method(clf, images, predicted)
  np.testing.assert_array_equal(method(clf, images, None), expected)
  np.testing.assert_array_equal(method(clf, images), expected)


# Small options of the slower methods, for the registry-wide tests below.
FAST = {"integrated_gradients": dict(steps=4), "iba": dict(steps=2, num_samples=2),
        "lime": dict(num_samples=16, num_segments=8), "mask_search": dict(num_steps=6),
        "rise": dict(num_masks=16), "smoothgrad": dict(num_samples=2),
        "score_cam": dict(chunk=4), "ablation_cam": dict(chunk=4), "sidu": dict(chunk=4),
        "sidu_feature_space": dict(chunk=4), "blur_ig": dict(steps=4), "guided_ig": dict(steps=4),
        "xrai": dict(steps=4), "deeplift_shap": dict(num_baselines=2),
        "kernel_shap": dict(num_samples=16, num_segments=8), "gradient_shap": dict(num_samples=2)}
# A bad value of each checked option, and the error it must raise.
BAD_OPTION_VALUES = {"positive_int": (0, ValueError), "number": (float("nan"), ValueError),
                     "one_of": ("no such choice", ValueError)}


KEY = jax.random.key(2)


def _call(name, clf, images, labels, key=KEY, **options):
  return methods.get(name)(clf, images, labels, key=key, **(FAST.get(name, {}) | options))


@pytest.mark.parametrize("name", methods.names())
def test_bad_inputs_raise_before_anything_runs(name):
  """One set of bad inputs for every method: each error names what is wrong."""
  info = methods.info(name)
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  images = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
  labels = jnp.array([3, 0])
  with pytest.raises(TypeError, match="clf"):
    _call(name, clf.apply, images, labels)
  with pytest.raises(ValueError, match=r"images.*\[B, H, W, 3\]"):
    _call(name, clf, images[0], labels)
  with pytest.raises(ValueError, match=r"images.*\[0, 1\]"):
    _call(name, clf, images + 1.0, labels)
  with pytest.raises(ValueError, match=r"labels.*\[0, 4\)"):
    _call(name, clf, images, jnp.array([4, 0]))
  with pytest.raises(ValueError, match=r"labels.*\[2\]"):
    _call(name, clf, images, jnp.array([1, 2, 3]))
  with pytest.raises(TypeError, match="unknown option"):  # SmoothGrad's: by its dry run
    _call(name, clf, images, labels, no_such_option=1)
  if info.needs_key:
    with pytest.raises(TypeError, match="key"):
      _call(name, clf, images, labels, key=None)
  if info.needs_layer is not None:
    with pytest.raises(ValueError, match=r"clf: .*features"):
      _call(name, Classifier(variables=clf.variables, apply=clf.apply), images, labels)
  if info.needs_guided:
    with pytest.raises(ValueError, match="clf: .*guided_apply"):
      _call(name, Classifier(variables=clf.variables, apply=clf.apply, features=clf.features,
                             head=clf.head), images, labels)
  for option_name, option in info.options.items():
    kind = getattr(option.check, "__qualname__", "").split(".")[0]
    if kind in BAD_OPTION_VALUES:
      value, error = BAD_OPTION_VALUES[kind]
      with pytest.raises(error, match=option_name):
        _call(name, clf, images, labels, **{option_name: value})


@pytest.mark.parametrize("name", methods.names())
def test_a_second_call_of_the_same_shapes_reuses_the_compiled_program(name):
  """The first call compiles the method's jitted core once; a call with other images,
  labels and key (same shapes and options) compiles nothing."""
  jitted = methods.info(name).jitted
  clf = tiny_classifiers.random_cnn(jax.random.key(0), num_classes=4)
  # A shape no other test of this process uses, so the first call must compile.
  images = jax.random.uniform(jax.random.key(1), (3, 20, 20, 3))
  before = jitted._cache_size()
  _call(name, clf, images, jnp.array([0, 1, 2]))
  assert jitted._cache_size() == before + 1
  _call(name, clf, jax.random.uniform(jax.random.key(5), (3, 20, 20, 3)), jnp.array([2, 2, 1]),
        key=jax.random.key(9))
  assert jitted._cache_size() == before + 1


def _close(actual, expected, scale_of):
  """Two programs (other batch sizes, chunks, or traced from outside) round differently:
  the maps sum at most ~10^3 float32 terms per value (tiny_classifiers' network, the
  methods' loops), so they agree to 10^3 eps of the maps' scale; a method whose map is a
  ratio or a fit of such values (LIME's ridge solve, IBA's few Adam steps) amplifies
  that by its conditioning, bounded here by 10x."""
  scale = float(np.abs(np.asarray(scale_of)).max()) or 1.0
  np.testing.assert_allclose(actual, expected, rtol=0, atol=1e4 * 2 ** -23 * scale)


@pytest.mark.parametrize("name", methods.names())
def test_an_images_map_does_not_depend_on_the_rest_of_the_batch_or_the_chunk(name):
  info = methods.info(name)
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=3, size=16)
  labels = jnp.array([1, 0, 3])
  maps = _call(name, clf, images, labels)
  _close(_call(name, clf, images[:1], labels[:1])[0], maps[0], maps[0])
  for chunk_option in ("chunk", "sample_chunk"):
    if chunk_option in info.options:
      _close(_call(name, clf, images, labels, **{chunk_option: 1}), maps, maps)


@pytest.mark.parametrize("name", methods.names())
def test_jit_and_vmap_from_outside(name):
  """A method called inside the caller's jax.jit, and mapped by jax.vmap over a leading
  axis of batches, gives the maps of direct calls."""
  clf = tiny_classifiers.random_cnn(jax.random.key(6), num_classes=4)
  images = tiny_classifiers.tinted_images(batch=4, size=16)
  labels = jnp.array([1, 0, 3, 2])
  key = jax.random.key(2)
  direct = _call(name, clf, images, labels, key=key)
  jitted = jax.jit(lambda x, y, k: _call(name, clf, x, y, key=k))(images, labels, key)
  _close(jitted, direct, direct)
  mapped = jax.vmap(lambda x, y: _call(name, clf, x, y, key=key))(
      images.reshape(2, 2, 16, 16, 3), labels.reshape(2, 2))
  for half in range(2):
    part = _call(name, clf, images[2 * half:2 * half + 2], labels[2 * half:2 * half + 2],
                 key=key)
    _close(mapped[half], part, part)


def test_the_layer_checks():
  clf = tiny_classifiers.random_cnn(jax.random.key(1), channels=5)
  images = jax.random.uniform(jax.random.key(0), (2, 32, 32, 3))
  assert registry.feature_shape(clf, images) == (8, 8, 5)
  no_head = Classifier(variables=clf.variables, apply=clf.apply, features=clf.features)
  registry.check_has_layer(no_head, "X", needs_head=False)
  with pytest.raises(ValueError, match="clf: X needs a Classifier with `features` and `head`"):
    registry.check_has_layer(no_head, "X")
  no_features = Classifier(variables=clf.variables, apply=clf.apply, head=clf.head)
  with pytest.raises(ValueError, match="clf: X needs a Classifier with `features`"):
    registry.check_has_layer(no_features, "X", needs_head=False)
  flat = clf.replace(features=lambda v, x: x.mean(axis=(1, 2)))
  with pytest.raises(ValueError, match=r"clf.features must return f32\[B,h,w,k\]"):
    registry.feature_shape(flat, images)


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "4", None])
def test_positive_int_rejects_what_is_not_one(value):
  with pytest.raises(ValueError, match="chunk"):
    registry.positive_int(value, "chunk")
  assert registry.positive_int(np.int64(3), "chunk") == 3
  assert type(registry.positive_int(np.int64(3), "chunk")) is int


@pytest.mark.parametrize("check, good, bad", [
    (registry.number(0.0, 1.0), [0, 0.5, 1], [-0.1, 1.1, float("nan"), True, "0.5"]),
    (registry.number(0.0, 1.0, low_open=True), [1e-9, 1.0], [0.0]),
    (registry.number(0.0, 1.0, high_open=True), [0.0], [1.0]),
    (registry.number(0.0), [0.0, 1e9], [-1e-9, float("inf")]),
    (registry.number(), [-1e9, 1e9], [float("inf"), None]),
    (registry.one_of("a", "b"), ["a", "b"], ["c", 1, None])])
def test_option_checks_accept_their_interval_and_refuse_the_rest(check, good, bad):
  for value in good:
    assert check(value, "x") == value
  for value in bad:
    with pytest.raises(ValueError, match="x must be"):
      check(value, "x")


def test_the_readmes_method_table_is_the_registrys():
  readme = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
  table = readme.split("<!-- methods table: begin -->\n")[1].split("\n<!-- methods table: end")[0]
  assert table == registry.markdown_table()


def test_every_method_has_its_section_and_contents_entry_in_the_docs():
  docs = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "methods.md").read_text()
  sections = set(re.findall(r"^### `(\w+)`", docs, flags=re.MULTILINE))
  contents = set(re.findall(r"\[`(\w+)`[^\]]*\]\(#", docs.partition("## Conventions")[0]))
  for name in methods.names():
    if name in ("fake_cam", "random"):  # the controls share one section, "Controls"
      assert "## Controls" in docs and "(#controls)" in docs
      continue
    function = methods.get(name).__name__
    assert name in sections or function in sections, name
    assert name in contents or function in contents, name
