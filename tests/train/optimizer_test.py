"""Tests of the optimizer against update rules written out in numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from salijax.train import optimizer


def make_params():
  keys = jax.random.split(jax.random.key(0), 4)
  return {
      "conv": {"kernel": jax.random.normal(keys[0], (3, 3, 2, 4)),
               "bias": jax.random.normal(keys[1], (4,))},
      "bn": {"scale": jax.random.normal(keys[2], (4,))},
      "fc": {"kernel": jax.random.normal(keys[3], (4, 3))},
  }


def make_grads(step):
  return jax.tree.map(lambda p: jnp.cos(p * (step + 1)), make_params())


def run(tx, num_steps):
  params = make_params()
  state = tx.init(params)
  for step in range(num_steps):
    updates, state = tx.update(make_grads(step), state, params)
    params = optax.apply_updates(params, updates)
  return params


def lr_at(step):
  return 0.1 / (step + 1)


def test_weight_decay_mask_is_kernels_only():
  mask = optimizer.weight_decay_mask(make_params())
  assert mask == {"conv": {"kernel": True, "bias": False}, "bn": {"scale": False},
                  "fc": {"kernel": True}}


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_matches_reference(nesterov):
  momentum, wd, num_steps = 0.9, 0.01, 4
  all_trainable = jax.tree.map(lambda _: True, make_params())
  tx = optimizer.make_optimizer("sgd", learning_rate=lr_at, momentum=momentum,
                                nesterov=nesterov, weight_decay=wd, trainable=all_trainable)
  got = run(tx, num_steps)
  # PyTorch's SGD: g += wd * p (kernels only); buf = m * buf + g;
  # direction = g + m * buf (Nesterov) or buf; p -= lr * direction.
  params = jax.tree.map(np.asarray, make_params())
  decay = optimizer.weight_decay_mask(params)
  buf = jax.tree.map(np.zeros_like, params)
  for step in range(num_steps):
    grads = jax.tree.map(np.asarray, make_grads(step))
    grads = jax.tree.map(lambda g, p, d: g + wd * p if d else g, grads, params, decay)
    buf = jax.tree.map(lambda b, g: momentum * b + g, buf, grads)
    direction = (jax.tree.map(lambda g, b: g + momentum * b, grads, buf) if nesterov
                 else buf)
    lr = lr_at(step)
    params = jax.tree.map(lambda p, d, lr=lr: p - lr * d, params, direction)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6),
               got, params)


def test_adamw_matches_reference():
  wd, b1, b2, eps, num_steps = 0.05, 0.9, 0.999, 1e-8, 3
  all_trainable = jax.tree.map(lambda _: True, make_params())
  tx = optimizer.make_optimizer("adamw", learning_rate=lr_at, momentum=0.0,
                                nesterov=False, weight_decay=wd, trainable=all_trainable)
  got = run(tx, num_steps)
  params = jax.tree.map(np.asarray, make_params())
  decay = optimizer.weight_decay_mask(params)
  m = jax.tree.map(np.zeros_like, params)
  v = jax.tree.map(np.zeros_like, params)
  for step in range(num_steps):
    t = step + 1
    grads = jax.tree.map(np.asarray, make_grads(step))
    m = jax.tree.map(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
    v = jax.tree.map(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)

    def update(p, m_, v_, d, step=step, t=t):
      adam = (m_ / (1 - b1**t)) / (np.sqrt(v_ / (1 - b2**t)) + eps)
      return p - lr_at(step) * (adam + (wd * p if d else 0.0))

    params = jax.tree.map(update, params, m, v, decay)
  jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5),
               got, params)


@pytest.mark.parametrize("name", optimizer.OPTIMIZERS)
def test_lr_scales_multiply_each_parameters_update(name):
  params = make_params()
  trainable = jax.tree.map(lambda _: True, params)
  scales = {"conv": {"kernel": 0.1, "bias": 1.0}, "bn": {"scale": 3.0}, "fc": {"kernel": 1.0}}
  kwargs = {"learning_rate": lr_at, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1,
            "trainable": trainable}
  plain = optimizer.make_optimizer(name, **kwargs)
  scaled = optimizer.make_optimizer(name, **kwargs, lr_scales=scales)
  plain_state, scaled_state = plain.init(params), scaled.init(params)
  for step in range(3):  # the optimizer state (momentum) is not affected by the scales
    grads = make_grads(step)
    expected, plain_state = plain.update(grads, plain_state, params)
    got, scaled_state = scaled.update(grads, scaled_state, params)
    jax.tree.map(lambda g, e, s: np.testing.assert_allclose(g, s * e, rtol=1e-6),
                 got, expected, scales)


@pytest.mark.parametrize("name", optimizer.OPTIMIZERS)
def test_frozen_params_get_zero_updates_and_no_state(name):
  params = make_params()
  trainable = {"conv": {"kernel": False, "bias": False}, "bn": {"scale": False},
               "fc": {"kernel": True}}
  tx = optimizer.make_optimizer(name, learning_rate=lr_at, momentum=0.9, nesterov=True,
                                weight_decay=0.1, trainable=trainable)
  state = tx.init(params)
  updates, _ = tx.update(make_grads(0), state, params)
  for path, update in jax.tree_util.tree_leaves_with_path(updates):
    frozen = path[0].key != "fc"
    assert bool(jnp.all(update == 0)) == frozen, path
  # No optimizer buffers are kept for the frozen parameters.
  state_sizes = sum(x.size for x in jax.tree.leaves(state) if x.ndim)
  assert state_sizes in (params["fc"]["kernel"].size, 2 * params["fc"]["kernel"].size)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": "rmsprop"}, "optimizer"), ({"momentum": 1.0}, "momentum"),
    ({"weight_decay": -1.0}, "weight_decay")])
def test_invalid_arguments(kwargs, field):
  args = {"name": "sgd", "learning_rate": lr_at, "momentum": 0.9, "nesterov": False,
          "weight_decay": 0.0, "trainable": {"w": True}, **kwargs}
  with pytest.raises(ValueError, match=field):
    optimizer.make_optimizer(args.pop("name"), **args)
