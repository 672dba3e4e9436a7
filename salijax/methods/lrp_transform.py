"""Layer-wise relevance propagation in any JAX function, by rewriting its jaxpr.

`propagating(fn, composite)(variables, images, bounds)` returns
`fn(variables, images)`, the same values, but its reverse-mode derivative in
`images` is LRP's relevance: the vjp of an output relevance R (f32[B,K]) gives
the relevance of every input value. The function's jaxpr is evaluated with
custom VJPs at the layers (`salijax.methods.lrp_rules`):

- a layer: a `conv_general_dilated` or `dot_general` whose one image-dependent
  operand is multiplied by parameters, together with the elementwise affine
  operations that follow it (`add`, `sub`, `mul`, `div`, `neg` with
  image-independent operands: the bias, an inference-mode BatchNorm). These are
  folded into the layer, y = s * L(x; W) + t, as zennit's canonizers merge a
  BatchNorm into the convolution before it. Its rule comes from the composite:
  the first layer (in forward order) of `composite.first_kinds` gets
  `composite.first`, every other convolution `composite.conv`, every other dense
  layer `composite.dense`;
- an average pool: a `reduce_sum` or `reduce_window_sum` and the elementwise
  affine and reshaping operations after it (`jnp.mean`, `flax.linen.avg_pool`,
  the models' adaptive average pool), the norm
  rule with `composite.stabilizer` (zennit's rule for AvgPool);
- a sum of two image-dependent values (a residual connection): the norm rule,
  each summand receiving R x_k / stab(x_1 + x_2), as zennit's ResNetCanonizer
  does with its `Sum` module;
- the ReLU (`max(x, 0)`), `tanh`, `logistic` and elementwise affine operations
  outside a layer (the input normalisation (x - mean) / std, a BatchNorm after
  no layer): relevance passes unchanged (zennit's `Pass`), so the relevance of
  the pixels is that of the normalised input;
- reshaping, slicing, concatenation, stacking, padding and max-pooling keep their
  gradient (zennit has no rule for them: a max-pool passes relevance to each
  window's maximum).

Any other operation on an image-dependent value (a product of two of them, an
exponential, a loop) raises a NotImplementedError naming it. Operations are
found through nested `jit`s, custom derivatives and `remat` (inlined).
`first_layer_input(fn, variables, images, first_kinds)` returns the input of
that first layer (the box rule's bounds are it on constant images).
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core

from salijax.methods.lrp_rules import AffineLayer, Rule, norm_relevance, stabilize
from salijax.wrapping.jaxpr_rewriting import INLINED, bind, inlined_body, relu_operand, sub_jaxprs

LAYER_KINDS = {"conv_general_dilated": "conv", "dot_general": "dense"}
AFFINE = ("add", "sub", "mul", "div", "neg")
RESHAPING = ("reshape", "broadcast_in_dim", "squeeze", "expand_dims")
GRADIENT_KEPT = RESHAPING + ("transpose", "slice", "dynamic_slice", "concatenate", "stack",
                             "pad", "rev", "reduce_window_max", "reduce_max",
                             "convert_element_type", "copy", "copy_p")
PASSED = ("tanh", "logistic")
POOLS = ("reduce_sum", "reduce_window_sum")


@dataclasses.dataclass(frozen=True)
class Composite:
  """Which rule each layer gets (module doc); `stabilizer` is the norm rule's."""

  conv: Rule
  dense: Rule
  first: Rule | None = None
  first_kinds: tuple[str, ...] = ()
  stabilizer: float = 1e-6


def _custom(forward: Callable[..., jax.Array],
            backward: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
  """forward(x, *others) whose VJP in x is backward(x, *others, g) (zeros for the others)."""
  function = jax.custom_vjp(forward)

  def forward_pass(*args):
    return forward(*args), args

  def backward_pass(args, g):
    return (backward(*args, g),) + tuple(jax.tree.map(jnp.zeros_like, a) for a in args[1:])

  function.defvjp(forward_pass, backward_pass)
  return function


def _residual_sum(stabilizer: float) -> Callable[[jax.Array, jax.Array], jax.Array]:
  function = jax.custom_vjp(lambda a, b: a + b)

  def backward(args, r):
    a, b = args
    g = r / stabilize(a + b, stabilizer)
    return a * g, b * g

  function.defvjp(lambda a, b: (a + b, (a, b)), backward)
  return function


class _Context:
  """What one evaluation shares: the composite, the box bounds, the first layer seen."""

  def __init__(self, composite: Composite | None, bounds: Any, first_kinds: tuple[str, ...]):
    self.composite = composite  # None: plain forward values (first_layer_input)
    self.bounds = bounds
    self.first_kinds = first_kinds
    self.first_seen = False
    self.first_input: jax.Array | None = None

  def is_first(self, kind: str) -> bool:
    if self.first_seen or kind not in self.first_kinds:
      return False
    self.first_seen = True
    return True


class _PendingLayer:
  """s * L(x; W) + t, computed when a non-affine operation needs it (module doc)."""

  def __init__(self, eqn: core.JaxprEqn, args: list[Any], position: int, x: jax.Array,
               first: bool, scale: Any = 1.0, shift: Any = 0.0):
    self.eqn, self.args, self.position, self.x, self.first = eqn, args, position, x, first
    self.scale, self.shift = scale, shift
    self.value: jax.Array | None = None

  @property
  def aval(self) -> Any:
    return self.eqn.outvars[0].aval

  def linear(self, x: jax.Array, weight: jax.Array) -> jax.Array:
    args = list(self.args)
    args[self.position] = x
    args[1 - self.position] = weight
    return bind(self.eqn, args)[0]

  def extended(self, scale: Any, shift: Any) -> "_PendingLayer":
    return _PendingLayer(self.eqn, self.args, self.position, self.x, self.first, scale, shift)

  def materialize(self, ctx: _Context) -> jax.Array:
    if self.value is not None:
      return self.value
    weight = self.args[1 - self.position]
    dtype = self.aval.dtype
    scale = self.scale
    folded = _folded(self.eqn, self.position, weight, scale)
    if folded is not None:  # the merged weights W' = s W, as zennit's canonizers make them
      weight, scale = folded, 1.0
    # A scale known on the host stays a Python float, so that the rules need one product
    # per sign, not two.
    known = (float(scale) if not isinstance(scale, jax.Array) and np.ndim(scale) == 0
             else None)
    scale = jnp.asarray(scale, dtype)
    shift = jnp.asarray(self.shift, dtype)
    if self.first:
      ctx.first_input = self.x

    def forward(x, weight, scale, shift, bounds):
      del bounds
      return (scale if known is None else known) * self.linear(x, weight) + shift

    if ctx.composite is None:
      self.value = forward(self.x, weight, scale, shift, None)
      return self.value
    kind = LAYER_KINDS[self.eqn.primitive.name]
    rule = (ctx.composite.first if self.first else
            ctx.composite.conv if kind == "conv" else ctx.composite.dense)

    def backward(x, weight, scale, shift, bounds, r):
      layer = AffineLayer(self.linear, weight, scale if known is None else known, shift)
      return rule.relevance(layer, x, r, bounds)

    self.value = _custom(forward, backward)(self.x, weight, scale, shift, ctx.bounds)
    return self.value


def _output_feature_axes(eqn: core.JaxprEqn, position: int,
                         weight_ndim: int) -> tuple[int, int] | None:
  """(output axis, weight axis) of a layer's output features, or None if it has no single
  such axis (a dense product with batch dimensions, or weights with several free axes)."""
  if eqn.primitive.name == "conv_general_dilated":
    numbers = eqn.params["dimension_numbers"]
    if position != 0 or eqn.params["feature_group_count"] != 1:
      return None
    return numbers.out_spec[1], numbers.rhs_spec[0]
  (contract_x, contract_w), (batch_x, _) = eqn.params["dimension_numbers"]
  if position == 1:
    contract_x, contract_w = contract_w, contract_x
  free = [d for d in range(weight_ndim) if d not in contract_w]
  if batch_x or len(free) != 1 or position != 0:
    return None
  return eqn.outvars[0].aval.ndim - 1, free[0]


def _folded(eqn: core.JaxprEqn, position: int, weight: jax.Array, scale: Any) -> Any:
  """The weights times a scale that varies along the output features only, or None."""
  if np.ndim(scale) == 0:
    return None
  axes = _output_feature_axes(eqn, position, np.ndim(weight))
  out_ndim = eqn.outvars[0].aval.ndim
  if axes is None or np.ndim(scale) > out_ndim:
    return None
  shape = (1,) * (out_ndim - np.ndim(scale)) + tuple(np.shape(scale))
  out_axis, weight_axis = axes
  if any(n != 1 for axis, n in enumerate(shape) if axis != out_axis):
    return None
  per_feature = jnp.reshape(scale, (-1,))
  if per_feature.shape[0] not in (1, weight.shape[weight_axis]):
    return None
  return weight * jnp.reshape(per_feature, [-1 if d == weight_axis else 1
                                            for d in range(weight.ndim)])


class _PendingPool:
  """A `reduce_sum` and the affine and reshaping operations after it (module doc)."""

  def __init__(self, x: jax.Array, steps: tuple[Callable[[jax.Array], jax.Array], ...]):
    self.x, self.steps = x, steps
    self.value: jax.Array | None = None

  def linear_map(self, x: jax.Array) -> jax.Array:
    for step in self.steps:
      x = step(x)
    return x

  def extended(self, step: Callable[[jax.Array], jax.Array]) -> "_PendingPool":
    return _PendingPool(self.x, (*self.steps, step))

  def materialize(self, ctx: _Context) -> jax.Array:
    if self.value is None:
      if ctx.composite is None:
        self.value = self.linear_map(self.x)
      else:
        stabilizer = ctx.composite.stabilizer
        self.value = _custom(
            self.linear_map,
            lambda x, r: norm_relevance(self.linear_map, x, r, stabilizer))(self.x)
    return self.value


_Pending = (_PendingLayer, _PendingPool)


def _value(value: Any, ctx: _Context) -> Any:
  return value.materialize(ctx) if isinstance(value, _Pending) else value


def _affine_update(eqn: core.JaxprEqn, position: int, other: Any, scale: Any,
                   shift: Any) -> tuple[Any, Any]:
  """(s, t) after `eqn`, whose image-dependent operand (at `position`) is s * L + t."""
  name = eqn.primitive.name
  if name == "neg":
    return -scale, -shift
  if name == "add":
    return scale, shift + other
  if name == "sub":
    return (scale, shift - other) if position == 0 else (-scale, other - shift)
  if name == "mul":
    return scale * other, shift * other
  return scale / other, shift / other  # div, the image-dependent value divided


def _is_affine(eqn: core.JaxprEqn, tracked: Sequence[bool]) -> bool:
  """An elementwise affine map of its one image-dependent operand, its shape kept."""
  name = eqn.primitive.name
  if name not in AFFINE or sum(tracked) != 1:
    return False
  if name == "div" and tracked[1]:
    return False
  operand = eqn.invars[tracked.index(True)]
  return (getattr(operand.aval, "shape", None) == eqn.outvars[0].aval.shape
          and jnp.issubdtype(eqn.outvars[0].aval.dtype, jnp.floating))


def _unsupported(eqn: core.JaxprEqn, why: str) -> NotImplementedError:
  return NotImplementedError(f"LRP: no rule for `{eqn.primitive.name}` {why}; supported are"
                             " convolutions and dense layers (with biases and BatchNorms),"
                             " ReLU/tanh/sigmoid, average and max pooling, residual sums and"
                             " reshaping")


def _evaluate(jaxpr: core.Jaxpr, consts: Sequence[Any], args: Sequence[Any],
              tracked_args: Sequence[bool], ctx: _Context) -> tuple[list[Any], list[bool]]:
  """Evaluates `jaxpr`; a value is tracked when it depends on the images (module doc)."""
  env: dict[Any, tuple[Any, bool]] = {}

  def read(atom: Any) -> tuple[Any, bool]:
    return (atom.val, False) if isinstance(atom, core.Literal) else env[atom]

  for var, value in zip(jaxpr.constvars, consts, strict=True):
    env[var] = (value, False)
  env.update(zip(jaxpr.invars, zip(args, tracked_args, strict=True), strict=True))
  for eqn in jaxpr.eqns:
    ins, tracked = zip(*[read(a) for a in eqn.invars], strict=True) if eqn.invars else ((), ())
    ins, tracked = list(ins), list(tracked)
    name = eqn.primitive.name
    outs_tracked = [True] * len(eqn.outvars)
    if not any(tracked):
      outs, outs_tracked = bind(eqn, ins), [False] * len(eqn.outvars)
    elif name in INLINED:
      body, body_consts = inlined_body(eqn)
      outs, outs_tracked = _evaluate(body, body_consts, ins, tracked, ctx)
    elif sub_jaxprs(eqn):
      raise _unsupported(eqn, "(a loop or branch) on image-dependent values")
    elif (operand := relu_operand(eqn)) is not None or name in PASSED:
      position = 0 if name in PASSED else list(eqn.invars).index(operand)
      others = ins[:position] + ins[position + 1:]

      def forward(x, *others, eqn=eqn, position=position):
        return bind(eqn, [*others[:position], x, *others[position:]])[0]

      outs = [_custom(forward, lambda x, *rest: rest[-1])(_value(ins[position], ctx), *others)]
    elif name in LAYER_KINDS:
      if sum(tracked) != 1:
        raise _unsupported(eqn, "between two image-dependent operands")
      position = tracked.index(True)
      x = _value(ins[position], ctx)
      first = ctx.is_first(LAYER_KINDS[name])
      outs = [_PendingLayer(eqn, ins, position, x, first)]
    elif name in POOLS:
      x = _value(ins[0], ctx)
      outs = [_PendingPool(x, (lambda v, eqn=eqn: bind(eqn, [v])[0],))]
    elif _is_affine(eqn, tracked):
      position = tracked.index(True)
      operand = ins[position]
      other = ins[1 - position] if len(ins) == 2 else None
      if isinstance(operand, _PendingLayer):
        outs = [operand.extended(*_affine_update(eqn, position, other, operand.scale,
                                                 operand.shift))]
      elif isinstance(operand, _PendingPool):
        outs = [operand.extended(lambda v, eqn=eqn, ins=ins, position=position: bind(
            eqn, [v if i == position else a for i, a in enumerate(ins)])[0])]
      else:  # outside a layer: relevance passes
        def forward(x, *others, eqn=eqn, position=position):
          return bind(eqn, [*others[:position], x, *others[position:]])[0]

        others = ins[:position] + ins[position + 1:]
        outs = [_custom(forward, lambda x, *rest: rest[-1])(operand, *others)]
    elif name == "add" and all(tracked) and len(ins) == 2:
      a, b = (_value(v, ctx) for v in ins)
      if a.shape != b.shape:
        raise _unsupported(eqn, f"of image-dependent values shaped {a.shape} and {b.shape}")
      outs = [_residual_sum(ctx.composite.stabilizer if ctx.composite else 0.0)(a, b)]
    elif name in RESHAPING and isinstance(ins[0], _PendingPool):
      outs = [ins[0].extended(lambda v, eqn=eqn, ins=ins: bind(eqn, [v, *ins[1:]])[0])]
    elif name in GRADIENT_KEPT:
      outs = bind(eqn, [_value(v, ctx) for v in ins])
    else:
      raise _unsupported(eqn, "on an image-dependent value")
    for var, value, is_tracked in zip(eqn.outvars, outs, outs_tracked, strict=True):
      if not isinstance(var, core.DropVar):
        env[var] = (value, is_tracked)
  results = [read(a) for a in jaxpr.outvars]
  return [value for value, _ in results], [is_tracked for _, is_tracked in results]


def _run(fn: Callable[[Any, jax.Array], Any], variables: Any, images: jax.Array,
         ctx: _Context) -> Any:
  closed, out_shapes = jax.make_jaxpr(fn, return_shape=True)(variables, images)
  leaves = jax.tree.leaves(variables)
  outs, _ = _evaluate(closed.jaxpr, closed.consts, [*leaves, images],
                      [False] * len(leaves) + [True], ctx)
  outs = [_value(v, ctx) for v in outs]
  return jax.tree.unflatten(jax.tree.structure(out_shapes), outs)


@dataclasses.dataclass(frozen=True)
class Propagating:
  """(variables, images, bounds) -> fn(variables, images) with LRP's VJP in `images` (module
  doc); `bounds`, (low, high) of the first layer's input, is used by a box rule only."""

  fn: Callable[[Any, jax.Array], Any]
  composite: Composite

  def __call__(self, variables: Any, images: jax.Array, bounds: Any = None) -> Any:
    ctx = _Context(self.composite, bounds, self.composite.first_kinds)
    return _run(self.fn, variables, images, ctx)


def propagating(fn: Callable[[Any, jax.Array], Any], composite: Composite) -> Propagating:
  """`fn(variables, images)` with LRP's relevance as its VJP (module doc)."""
  return Propagating(fn, composite)


def first_layer_input(fn: Callable[[Any, jax.Array], Any], variables: Any, images: jax.Array,
                      first_kinds: tuple[str, ...]) -> jax.Array:
  """The input of fn's first layer of `first_kinds` (forward order) on `images`."""
  ctx = _Context(None, None, first_kinds)
  _run(fn, variables, images, ctx)
  if ctx.first_input is None:
    raise NotImplementedError(f"LRP: the model has no layer of the kinds {list(first_kinds)}"
                              " for the first-layer rule")
  return ctx.first_input
