"""salijax.metrics.baselines: each named baseline against its definition, specs, clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax.metrics import baselines, substrates


def images():
  return jax.random.uniform(jax.random.key(0), (2, 8, 10, 3))


@pytest.mark.parametrize("name, reduce", [
    ("min", np.min), ("max", np.max), ("mean", np.mean)])
def test_per_image_values_over_all_pixels_and_channels(name, reduce):
  x = np.asarray(images())
  got = np.asarray(baselines.baseline_images(jnp.asarray(x), baselines.check_baseline(name, x)))
  want = np.broadcast_to(reduce(x, axis=(1, 2, 3))[:, None, None, None], x.shape)
  np.testing.assert_allclose(got, want, rtol=1e-6)


def test_black_white_values_blur_uniform_and_arrays():
  x = images()
  make = lambda spec, key=None: np.asarray(baselines.baseline_images(x, spec, key))  # noqa: E731
  assert (make("black") == 0).all() and (make("white") == 1).all()
  spec = baselines.check_baseline(0.25, x)
  assert spec == (0.25, 0.25, 0.25) and (make(spec) == 0.25).all()
  spec = baselines.check_baseline([0.1, 0.2, 0.3], x)
  np.testing.assert_array_equal(make(spec)[1, 3, 4], np.float32([0.1, 0.2, 0.3]))
  blur = substrates.substrate(x, "blur", space="pixel", mean=(0, 0, 0), blur_size=11,
                              blur_sigma=5.0, blur_padding="reflect")
  np.testing.assert_array_equal(make("blur"), np.asarray(blur))
  key = jax.random.key(3)
  noise = make(baselines.check_baseline("uniform", x, key=key), key)
  # Image b's noise from fold_in(key, b) alone: the same in a batch of any size.
  np.testing.assert_array_equal(noise, np.stack([
      np.asarray(jax.random.uniform(jax.random.fold_in(key, b), x.shape[1:]))
      for b in range(len(x))]))
  given = np.full(x.shape, 0.5, np.float32)
  spec = baselines.check_baseline(given, x)
  assert baselines.split(spec)[0] is None and (make(spec) == 0.5).all()
  assert baselines.split("min") == ("min", None)


@pytest.mark.parametrize("baseline, kwargs, error, pattern", [
    ("sepia", {}, ValueError, "baseline must be one of"),
    ("uniform", {}, TypeError, "key is required"),
    ("blur", {"names": baselines.DETERMINISTIC[:-1]}, ValueError, "must be one of"),
    (1.5, {}, ValueError, r"a value in \[0, 1\]"),
    ([0.1, 0.2], {}, ValueError, "3 channel values"),
    (True, {}, ValueError, "baseline must be"),
    (None, {}, TypeError, "must be a name"),
    (np.zeros((2, 8, 10, 3)), {"arrays": False}, ValueError, "got an array"),
    (np.zeros((2, 8, 10)), {}, ValueError, "images' shape"),
    (np.full((2, 8, 10, 3), 2.0), {}, ValueError, "in"),
])
def test_bad_baselines(baseline, kwargs, error, pattern):
  with pytest.raises(error, match=pattern):
    baselines.check_baseline(baseline, images(), **kwargs)
