"""What a config trains: the model, what of it trains, the optimizer and the initial state.

`build_setup` turns a validated config into a `TrainingSetup`; `initial_state`
draws (or loads) the weights of a fresh run; `abstract_state` gives the same
state's shapes without computing it, as the target of a checkpoint restore.

Random keys: `root = jax.random.key(config.seed)`; the initial weights use
`fold_in(root, 0)`, the dropout keys `fold_in(fold_in(root, 1), step)`.
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from salijax import models, porting
from salijax.train import config as config_lib
from salijax.train import modes
from salijax.train import optimizer as optimizer_lib
from salijax.train import schedule as schedule_lib
from salijax.train import train_state as train_state_lib
from salijax.train.train_state import TrainState


@dataclasses.dataclass(frozen=True)
class TrainingSetup:
  """Everything static about a run.

  Attributes:
    module: the model, with BatchNorm layers frozen as the mode asks.
    trainable: bool pytree like the params; False = frozen.
    tx: the optimizer (frozen params get zero updates).
    schedule: learning rate per step.
    steps_per_epoch: train batches per epoch (the last partial batch dropped).
    total_steps: num_epochs * steps_per_epoch.
    num_classes: the number of classes the model outputs.
  """

  module: nn.Module
  trainable: Any
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  steps_per_epoch: int
  total_steps: int
  num_classes: int


def root_key(config: ml_collections.ConfigDict) -> jax.Array:
  return jax.random.key(config.seed)


def init_key(config: ml_collections.ConfigDict) -> jax.Array:
  """The key of the initial weights (and of a pretrained model's new head)."""
  return jax.random.fold_in(root_key(config), 0)


def dropout_key(config: ml_collections.ConfigDict) -> jax.Array:
  """The key that each step folds its step number into for dropout."""
  return jax.random.fold_in(root_key(config), 1)


def build_setup(config: ml_collections.ConfigDict, *, num_classes: int,
                steps_per_epoch: int) -> TrainingSetup:
  """The `TrainingSetup` of a validated `config` for a dataset of `num_classes`."""
  vgg_options = config_lib.vgg_options(config)
  probe = models.create(config.model, num_classes=num_classes, head=config.head,
                        **vgg_options)
  plan = modes.trainable_plan(config.mode, config_lib.trainable_layers(config),
                              head_prefix=models.head_prefix(probe))
  module = models.create(config.model, num_classes=num_classes, head=config.head,
                         bn_trainable=plan.bn_trainable, **vgg_options)
  params = jax.eval_shape(
      lambda: models.init(module, init_key(config), config.image_size))["params"]
  if plan.trainable is None:
    trainable = jax.tree.map(lambda _: True, params)
  else:
    trainable = models.trainable_mask(module, params, plan.trainable)
    if not any(jax.tree.leaves(trainable)):
      raise ValueError(
          f"config.trainable_layers: {config.trainable_layers!r} matches no parameter "
          f"of {config.model}")
  scales, lr_scales = None, config_lib.lr_scales(config)
  if lr_scales:
    scales = jax.tree.map(lambda _: 1.0, params)
    for prefix, scale in lr_scales:
      mask = models.trainable_mask(module, params, (prefix,))
      scales = jax.tree.map(lambda old, m, s=scale: s if m else old, scales, mask)
  total_steps = config.num_epochs * steps_per_epoch
  schedule = schedule_lib.warmup_cosine(
      config.learning_rate, total_steps=total_steps,
      warmup_steps=round(config.warmup_epochs * steps_per_epoch), floor=config.lr_floor)
  tx = optimizer_lib.make_optimizer(
      config.optimizer, learning_rate=schedule, momentum=config.momentum,
      nesterov=config.nesterov, weight_decay=config.weight_decay, trainable=trainable,
      lr_scales=scales)
  return TrainingSetup(module=module, trainable=trainable, tx=tx, schedule=schedule,
                       steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                       num_classes=num_classes)


def _state_from_variables(setup: TrainingSetup, variables: dict[str, Any]) -> TrainState:
  params = variables["params"]
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}),
                    opt_state=setup.tx.init(params), window=train_state_lib.empty_window())


def _shapes(tree: Any) -> tuple[Any, list[tuple[tuple[int, ...], Any]]]:
  leaves, structure = jax.tree.flatten(tree)
  return structure, [(tuple(x.shape), x.dtype) for x in leaves]


def abstract_state(setup: TrainingSetup, config: ml_collections.ConfigDict) -> TrainState:
  """The shapes/dtypes (`jax.ShapeDtypeStruct`) of the state, computed without FLOPs."""
  return jax.eval_shape(lambda: _state_from_variables(
      setup, models.init(setup.module, init_key(config), config.image_size)))


def initial_state(setup: TrainingSetup, config: ml_collections.ConfigDict) -> TrainState:
  """The state at step 0: random weights, or `config.pretrained` weights.

  Raises:
    ValueError: the pretrained variables do not have the model's structure/shapes.
  """
  variables = porting.load_weights(
      config.model, config.pretrained, num_classes=setup.num_classes,
      head=config.head, key=init_key(config))
  if variables is None:
    variables = models.init(setup.module, init_key(config), config.image_size)
  state = _state_from_variables(setup, variables)
  if _shapes(state) != _shapes(abstract_state(setup, config)):
    raise ValueError(
        f"config.pretrained: the weights of {config.pretrained!r} do not match "
        f"{config.model} with {setup.num_classes} classes and head={config.head!r}")
  return state
