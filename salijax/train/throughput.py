"""Throughput of the jitted train step and forward pass of a model, in images/s.

Each measurement compiles once, runs `warmup` untimed calls, then times
`repeats` calls, each waited for with `jax.block_until_ready` (so calls never
overlap), and reports the median. Inputs are random images made on the
device, so only the compiled computation is timed (no input pipeline).

Usage:

  tp = train_throughput("resnet18", image_size=80, batch_size=64)
  print(tp.images_per_sec)
"""

import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from salijax import models
from salijax.train import optimizer as optimizer_lib
from salijax.train import steps as steps_lib
from salijax.train import train_state as train_state_lib


class Throughput(NamedTuple):
  """A timing result.

  Attributes:
    images_per_sec: batch_size / median_sec.
    median_sec: median time of one call.
    compile_sec: time of the first call (tracing + compilation + one run).
  """

  images_per_sec: float
  median_sec: float
  compile_sec: float


def time_calls(step: Callable[[Any], Any], carry: Any, *, batch_size: int, warmup: int = 2,
               repeats: int = 10) -> Throughput:
  """Times `carry = step(carry)` (a jitted function); see the module doc.

  Args:
    step: maps the carry to the next carry (e.g. a train state); a step
      that has no state to carry returns its output, which only serves to
      wait for the computation.
    carry: the first input.
    batch_size: images processed per call.
    warmup: untimed calls after the first (compiling) call.
    repeats: timed calls (>= 1).
  """
  if repeats < 1:
    raise ValueError(f"repeats: expected >= 1, got {repeats}")
  if warmup < 0:
    raise ValueError(f"warmup: expected >= 0, got {warmup}")
  start = time.perf_counter()
  carry = jax.block_until_ready(step(carry))
  compile_sec = time.perf_counter() - start
  timings = []
  for call in range(warmup + repeats):
    start = time.perf_counter()
    carry = jax.block_until_ready(step(carry))
    if call >= warmup:
      timings.append(time.perf_counter() - start)
  median = statistics.median(timings)
  return Throughput(images_per_sec=batch_size / median, median_sec=median,
                    compile_sec=compile_sec)


def _random_batch(key: jax.Array, batch_size: int, image_size: int, num_classes: int):
  image_key, label_key = jax.random.split(key)
  images = jax.random.uniform(image_key, (batch_size, image_size, image_size, 3))
  labels = jax.random.randint(label_key, (batch_size,), 0, num_classes)
  return images, labels


def sgd_training(module: nn.Module, variables: Any, key: jax.Array
                 ) -> tuple[steps_lib.TrainStep, train_state_lib.TrainState]:
  """(train step, not jitted; its first state): SGD with Nesterov momentum and weight decay
  on every parameter, the training binary's optimizer at a constant learning rate."""
  params = variables["params"]
  trainable = jax.tree.map(lambda _: True, params)
  tx = optimizer_lib.make_optimizer(
      "sgd", learning_rate=optax.constant_schedule(0.01), momentum=0.9, nesterov=True,
      weight_decay=5e-4, trainable=trainable)
  state = train_state_lib.TrainState(
      step=jnp.zeros((), jnp.int32), params=params,
      batch_stats=variables.get("batch_stats", {}), opt_state=tx.init(params),
      window=train_state_lib.empty_window())
  return steps_lib.make_train_step(module, tx, trainable, dropout_key=key,
                                   label_smoothing=0.0), state


def train_throughput(arch: str, *, image_size: int, batch_size: int,
                     num_classes: int = 10, **timing) -> Throughput:
  """Images/s of a full SGD train step (forward, backward, update) of `arch`.

  `timing` holds the keyword arguments of `time_calls` (warmup, repeats).
  """
  module = models.create(arch, num_classes=num_classes)
  key = jax.random.key(0)
  step, state = sgd_training(module, models.init(module, key, image_size), key)
  images, labels = _random_batch(key, batch_size, image_size, num_classes)
  train_step = jax.jit(step)
  valid = jnp.ones((batch_size,), bool)
  return time_calls(lambda s: train_step(s, images, labels, valid), state,
                    batch_size=batch_size, **timing)


def forward_throughput(arch: str, *, image_size: int, batch_size: int,
                       num_classes: int = 10, **timing) -> Throughput:
  """Images/s of the jitted inference forward pass (logits) of `arch`."""
  module = models.create(arch, num_classes=num_classes)
  key = jax.random.key(0)
  variables = models.init(module, key, image_size)
  images, _ = _random_batch(key, batch_size, image_size, num_classes)
  forward = jax.jit(lambda v, x: module.apply(v, x, train=False))
  # The carry is the logits, ignored: each call recomputes from the same images.
  return time_calls(lambda _: forward(variables, images), None,
                    batch_size=batch_size, **timing)
