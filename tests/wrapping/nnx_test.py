"""salijax.wrap on Flax NNX modules: the CNN of the NNX documentation, a model with an
nnx.List of blocks, BatchNorm and Dropout (evaluation mode), a model whose blocks are stacked
and run by nnx.scan, and jimm's ViT (jax-image-models, a third-party package of NNX models)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import wrapped_checks
from flax import nnx

import salijax
from salijax import methods
from salijax.wrapping import layer_names


class DocsCNN(nnx.Module):
  """The CNN of Flax NNX's documentation, for 32x32 RGB images and 5 classes."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(3, 16, kernel_size=(3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(16, 32, kernel_size=(3, 3), rngs=rngs)
    self.linear1 = nnx.Linear(32 * 8 * 8, 64, rngs=rngs)
    self.linear2 = nnx.Linear(64, 5, rngs=rngs)

  def __call__(self, x):
    x = nnx.avg_pool(nnx.relu(self.conv1(x)), window_shape=(2, 2), strides=(2, 2))
    x = nnx.avg_pool(nnx.relu(self.conv2(x)), window_shape=(2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    return self.linear2(nnx.relu(self.linear1(x)))


class BlocksCNN(nnx.Module):
  """A stem, an nnx.List of conv blocks with BatchNorm, Dropout before the classifier."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.stem = nnx.Conv(3, 8, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)
    self.blocks = nnx.List([nnx.Sequential(nnx.Conv(8, 8, kernel_size=(3, 3), rngs=rngs),
                                           nnx.BatchNorm(8, rngs=rngs), nnx.relu)
                            for _ in range(3)])
    self.dropout = nnx.Dropout(0.5, rngs=rngs)
    self.fc = nnx.Linear(8, 4, rngs=rngs)

  def __call__(self, x):
    x = nnx.relu(self.stem(x))
    for block in self.blocks:
      x = x + block(x)
    return self.fc(self.dropout(x.mean((1, 2))))


class ScannedBlocksCNN(nnx.Module):
  """A stem and two residual blocks stacked by nnx.vmap and run by nnx.scan, as models that
  stack their layers do (jimm's transformers)."""

  def __init__(self, *, rngs: nnx.Rngs):
    self.stem = nnx.Conv(3, 8, kernel_size=(3, 3), strides=(2, 2), rngs=rngs)

    @nnx.split_rngs(splits=2)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def blocks(rngs):
      return nnx.Conv(8, 8, kernel_size=(3, 3), rngs=rngs)

    self.blocks = blocks(rngs)
    self.fc = nnx.Linear(8, 4, rngs=rngs)

  def __call__(self, x):
    @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
    def run(x, block):
      return x + nnx.relu(block(x))

    return self.fc(run(nnx.relu(self.stem(x)), self.blocks).mean((1, 2)))


_images = wrapped_checks.random_images


def _nnx_layer_forward(model, layer, images):
  """The test's own reading: a copy of the model whose layer adds delta to its output."""
  *parents, last = [int(p) if p.isdigit() else p for p in layer.split(".")]

  def layer_forward(delta):
    copy = nnx.merge(*nnx.split(model), copy=True)  # Variables of this trace level
    copy.eval()
    parent = copy
    for part in parents:
      parent = parent[part] if isinstance(part, int) else getattr(parent, part)
    original = parent[last] if isinstance(last, int) else getattr(parent, last)
    seen = []

    def tapped(*args, **kwargs):
      out = original(*args, **kwargs)
      seen.append(out)
      return out if delta is None else out + delta

    if isinstance(last, int):
      parent[last] = tapped
    else:
      setattr(parent, last, tapped)
    return copy(images), seen[0]

  return layer_forward


def test_docs_cnn():
  model = DocsCNN(rngs=nnx.Rngs(0))
  images, labels = _images(), jnp.array([1, 4])
  clf = salijax.wrap(model, layer="conv2")
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(clf, _nnx_layer_forward(model, "conv2", images),
                                        images, labels)
  wrapped_checks.assert_every_method_runs(clf, images, labels)
  # The compiled program and NNX's op-by-op call: the same sums, which XLA:CPU's kernels may
  # round otherwise (its own convolutions do: 4e-8 here), so float32 rounding at their scale.
  logits = model(images)
  np.testing.assert_allclose(jax.jit(clf.apply)(clf.variables, images), logits, rtol=1e-5,
                             atol=1e-5 * float(jnp.abs(logits).max()))


def test_list_of_blocks_in_evaluation_mode():
  model = BlocksCNN(rngs=nnx.Rngs(0))
  images, labels = _images(), jnp.array([0, 3])
  model.train()
  model(images)  # BatchNorm running statistics move away from (0, 1)
  clf = salijax.wrap(model, layer="blocks.1")
  model.eval()
  np.testing.assert_allclose(clf.logits(images), model(images), rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(clf.logits(images), clf.logits(images))  # no dropout
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(clf, _nnx_layer_forward(model, "blocks.1", images),
                                        images, labels)


def test_blocks_run_by_nnx_scan():
  model = ScannedBlocksCNN(rngs=nnx.Rngs(0))
  images, labels = _images(), jnp.array([2, 1])
  clf = salijax.wrap(model, layer="stem")
  np.testing.assert_allclose(clf.logits(images), model(images), rtol=1e-6, atol=1e-6)
  wrapped_checks.assert_head_is_exact(clf, images)
  wrapped_checks.assert_gradcam_matches(clf, _nnx_layer_forward(model, "stem", images),
                                        images, labels)


@pytest.mark.slow
def test_jimm_vit_third_party():
  """jimm's VisionTransformer, random weights, a tiny configuration (32 x 32 images, 8 x 8
  patches, 2 blocks of width 32). Its blocks are stacked and run by nnx.scan (no block is a
  layer to read alone), so the layer is the patch embedding, a 4 x 4 map. The guided methods,
  DeepLIFT and LRP refuse it, saying why: their rewrites of the forward pass do not reach
  inside nnx.scan's loop."""
  jimm = wrapped_checks.extra_module("jimm")
  images, labels = _images(), jnp.array([4, 1])
  # jimm annotates its parameters and activations for a ("data", "fsdp") mesh, and its own
  # tests run under one.
  with jax.set_mesh(jax.make_mesh((1, 1), ("data", "fsdp"), devices=jax.devices()[:1])):
    model = jimm.VisionTransformer(num_classes=5, img_size=32, patch_size=8, num_layers=2,
                                   num_heads=2, mlp_dim=64, hidden_size=32, rngs=nnx.Rngs(0))
    clf = salijax.wrap(model, layer="encoder.patch_embeddings")
    model.eval()
    np.testing.assert_allclose(clf.logits(images), model(images), rtol=1e-6, atol=1e-6)
    assert clf.features(clf.variables, images).shape == (2, 4, 4, 32)
    wrapped_checks.assert_head_is_exact(clf, images)
    wrapped_checks.assert_gradcam_matches(
        clf, _nnx_layer_forward(model, "encoder.patch_embeddings", images), images, labels)
    wrapped_checks.assert_every_method_runs(clf, images, labels,
                                            skip=("guided_backprop", "guided_gradcam",
                                                  "deeplift", "deeplift_shap", "lrp"))
    for guided in (methods.guided_backprop, methods.guided_gradcam):
      with pytest.raises(NotImplementedError, match="guided ReLUs inside `scan`"):
        guided(clf, images, labels)
    for rescaled in (methods.deeplift, methods.deeplift_shap):
      with pytest.raises(NotImplementedError, match="DeepLIFT: nonlinearities inside `scan`"):
        rescaled(clf, images, labels, key=jax.random.key(3))
    with pytest.raises(NotImplementedError, match="LRP: no rule for `scan`"):
      methods.lrp(clf, images, labels)


def test_unknown_layer_lists_the_submodules():
  model = DocsCNN(rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match="'conv3'.*conv1, conv2, linear1, linear2"):
    salijax.wrap(model, layer="conv3")
  assert [name for name, _ in layer_names(model)] == ["conv1", "conv2", "linear1", "linear2"]
  with pytest.raises(ValueError, match="holds its own"):
    salijax.wrap(model, nnx.state(model), layer="conv2")


def test_the_classifier_is_a_pure_pytree():
  model = DocsCNN(rngs=nnx.Rngs(0))
  images = _images()
  clf = salijax.wrap(model, layer="conv2")
  leaves = jax.tree.leaves(clf)
  assert leaves and all(isinstance(leaf, jax.Array) for leaf in leaves)
  doubled = jax.tree.map(lambda a: 2 * a, clf)
  assert not np.allclose(doubled.logits(images), clf.logits(images))
  maps = jax.jit(lambda c, x: methods.gradcam(c, x))(clf, images)  # traced variables
  np.testing.assert_allclose(maps, methods.gradcam(clf, images), rtol=1e-5, atol=1e-6)
