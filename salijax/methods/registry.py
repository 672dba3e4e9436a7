"""The method registry: every saliency method's metadata, host-side checks and call shape.

    maps = salijax.methods.get("rise")(clf, images, labels, key=key, num_masks=2000)
    salijax.methods.info("rise").options["num_masks"].default     # 4000

Every registered method is called as

    method(clf, images, labels=None, *, key=None, compute_dtype=None, **options) -> f32[B,H,W]

  clf: a `salijax.Classifier`; images: f32[B,H,W,3] in [0, 1]; labels: i32[B],
  the class explained for each image, or None for its predicted class (the
  argmax logit); key: a `jax.random.key`, required by the methods that draw
  (`info(name).needs_key`) and ignored by the others; compute_dtype: None (the
  Classifier as given: float32) or the dtype of the model's forwards,
  "float32", "bfloat16" or "float16" (`salijax.compute_dtype`: the map and its
  sums stay float32); options: the method's hyperparameters
  (`info(name).options`: defaults and checks; docs/methods.md).

It raises TypeError for an argument of the wrong type (an unknown option
included) and ValueError for a bad value (images outside [0, 1], labels out of
range, a Classifier without the explained layer or the guided ReLUs the
method needs), before anything is traced.

`@register(name, ...)` on a method's core builds that public function: it
checks and converts everything on the host once, so a method module holds
only its mathematics. The core is called as

    core(clf, images f32[B,H,W,3], labels i32[B], [key,] **options)

(`key` only for the methods that draw), with each option checked and
converted by its `Option`. A core that needs more host-side preparation
(segmentations, statistics) calls its jitted part itself and names it with
`jitted=`, so that tests can watch its compilation cache.
"""

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import numpy as np

from salijax import validation
from salijax.classifier import Classifier
from salijax.compute_dtype import with_compute_dtype

PASS_KINDS = ("forward", "gradient")
LAYER_NEEDS = (None, "features", "features_and_head")


class Method(Protocol):
  """(clf, images f32[B,H,W,3], labels i32[B] | None, *, key, compute_dtype, **options)
  -> f32[B,H,W]."""

  def __call__(self, clf: Classifier, images: Any, labels: Any = None, *,
               key: jax.Array | None = None, compute_dtype: Any = None,
               **options: Any) -> jax.Array: ...


class Shapes(NamedTuple):
  """What a method's cost depends on: the batch, the image size and the layer's channels."""

  batch: int
  height: int
  width: int
  channels: int  # k at the explained layer (0 when the Classifier has none)


class PassCount(NamedTuple):
  """A map's cost: `passes` passes of `kind` per image, `per_pass` images of it per pass."""

  kind: str | None  # one of PASS_KINDS, or None for no pass
  passes: int
  per_pass: int


@dataclasses.dataclass(frozen=True)
class Option:
  """A hyperparameter: its default and the host-side check that converts a given value.

  `check(value, name)` returns the value as the core takes it (a Python int or
  float, so that equal options hash equally as static arguments) or raises
  TypeError/ValueError naming `name`; None passes the value on unchanged.
  """

  default: Any
  check: Callable[[Any, str], Any] | None = None

  def resolve(self, value: Any, name: str) -> Any:
    return value if self.check is None else self.check(value, name)


@dataclasses.dataclass(frozen=True)
class MethodInfo:
  """What the registry knows of a method.

  Attributes:
    name: the registered name ("gradcam").
    title: the name in papers and messages ("Grad-CAM").
    summary: one line on what the map is.
    needs_key: whether it draws random numbers (a `key` is required).
    needs_layer: None, "features" (clf.features) or "features_and_head".
    needs_guided: whether it needs `clf.guided_apply`.
    options: name -> Option, in signature order.
    cost: (resolved options, Shapes) -> PassCount, what one map costs.
    core: the function the public one calls (see the module doc).
    jitted: the jitted function whose cache holds the method's compiled programs.
    takes_extra_options: whether options beyond `options` pass on to the core
      (SmoothGrad's, for the method it averages).
    uses_labels: False for class-agnostic maps: given labels are checked, and
      labels=None costs no forward pass.
  """

  name: str
  title: str
  summary: str
  needs_key: bool
  needs_layer: str | None
  needs_guided: bool
  options: Mapping[str, Option]
  cost: Callable[[Mapping[str, Any], Shapes], PassCount]
  core: Callable[..., Any]
  jitted: Any
  takes_extra_options: bool = False
  uses_labels: bool = True

  def defaults(self) -> dict[str, Any]:
    """{option: default}."""
    return {name: option.default for name, option in self.options.items()}

  def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
    """Every option, given or default, checked and converted; TypeError for unknown ones."""
    unknown = sorted(set(given) - set(self.options))
    if unknown and not self.takes_extra_options:
      raise TypeError(f"{self.name}: unknown option(s) {unknown}; its options are "
                      f"{list(self.options)}")
    resolved = {name: option.resolve(given.get(name, option.default), name)
                for name, option in self.options.items()}
    resolved.update({name: given[name] for name in unknown})
    return resolved


_METHODS: dict[str, tuple[MethodInfo, Method]] = {}


def check_has_layer(clf: Classifier, method: str, *, needs_head: bool = True) -> None:
  """ValueError naming `clf` unless it has `features` (and, with `needs_head`, `head`)."""
  if clf.features is None or (needs_head and clf.head is None):
    needed = "`features` and `head`" if needs_head else "`features`"
    raise ValueError(
        f"clf: {method} needs a Classifier with {needed} (an explained layer: "
        "salijax.wrap(model, variables, layer=...)), "
        f"got features={clf.features!r}, head={clf.head!r}")


def feature_shape(clf: Classifier, images: Any) -> tuple[int, int, int]:
  """(h, w, k) of clf.features(images) f32[B,h,w,k] (no computation); ValueError if not 4-d."""
  shape = jax.eval_shape(clf.features, clf.variables,
                         jax.ShapeDtypeStruct(images.shape, jnp.float32)).shape
  if len(shape) != 4 or shape[0] != images.shape[0]:
    raise ValueError(f"clf.features must return f32[B,h,w,k] for images {tuple(images.shape)},"
                     f" got shape {tuple(shape)}")
  return tuple(int(n) for n in shape[1:])


def check_guided_apply(clf: Classifier, method: str) -> None:
  """ValueError naming `clf` when it has no `guided_apply` (and how to get one)."""
  if clf.guided_apply is None:
    raise ValueError(
        f"clf: {method} needs a Classifier with `guided_apply` (its logits with every ReLU"
        " guided): build it with salijax.wrap(model, ...), or give"
        " Classifier(..., guided_apply=salijax.wrapping.guide_relus(apply)); got"
        " guided_apply=None")


def core_arguments(info: MethodInfo, clf: Classifier, images: Any, labels: Any,
                   key: jax.Array | None, options: Mapping[str, Any], compute_dtype: Any = None
                   ) -> tuple[tuple[Any, ...], dict[str, Any]]:
  """The host-side checks of a call of `info`'s method (the module doc): the positional
  arguments of its core, (clf, images f32[B,H,W,3], labels i32[B][, key]), with clf's
  forwards in `compute_dtype` (None: as given), and its options resolved. A method's variant
  with more outputs (`mask_search_with_objective`) checks its call with it too."""
  if compute_dtype is not None:  # the forwards (labels=None's included) in that dtype
    clf = with_compute_dtype(clf, compute_dtype)
  if labels is None and not info.uses_labels:  # class-agnostic: no forward for labels
    validation.check_classifier(clf, images)
    labels = jnp.zeros(images.shape[:1], jnp.int32)
  else:
    labels = validation.checked_labels(clf, images, labels)
  images = jnp.asarray(images, jnp.float32)
  if info.needs_key:
    validation.check_key(key)
  if info.needs_layer is not None:
    check_has_layer(clf, info.title, needs_head=info.needs_layer == "features_and_head")
    feature_shape(clf, images)
  if info.needs_guided:
    check_guided_apply(clf, info.title)
  resolved = info.resolve(options)
  labels = jnp.asarray(labels, jnp.int32)
  return (clf, images, labels, key) if info.needs_key else (clf, images, labels), resolved


def _public(info: MethodInfo) -> Method:
  def method(clf: Classifier, images: Any, labels: Any = None, *, key: jax.Array | None = None,
             compute_dtype: Any = None, **options: Any) -> jax.Array:
    arguments, resolved = core_arguments(info, clf, images, labels, key, options, compute_dtype)
    return info.core(*arguments, **resolved)

  parameters = [
      inspect.Parameter("clf", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Classifier),
      inspect.Parameter("images", inspect.Parameter.POSITIONAL_OR_KEYWORD),
      inspect.Parameter("labels", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None),
      inspect.Parameter("key", inspect.Parameter.KEYWORD_ONLY, default=None),
      inspect.Parameter("compute_dtype", inspect.Parameter.KEYWORD_ONLY, default=None)]
  parameters += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option.default)
                 for name, option in info.options.items()]
  if info.takes_extra_options:
    parameters.append(inspect.Parameter("method_options", inspect.Parameter.VAR_KEYWORD))
  method.__signature__ = inspect.Signature(parameters)
  method.__name__ = method.__qualname__ = info.name
  method.__module__ = info.core.__module__
  method.__doc__ = (inspect.cleandoc(info.core.__doc__ or "") + "\n\nCalled as (clf, images,"
                    " labels=None, *, key=None, compute_dtype=None, **options): the shared"
                    " arguments and errors are in salijax.methods.registry.")
  method.info = info
  return method


def register(name: str, *, title: str, summary: str, cost: Callable[..., PassCount],
             options: Mapping[str, Option] | None = None, needs_key: bool = False,
             needs_layer: str | None = None, needs_guided: bool = False,
             jitted: Any = None, takes_extra_options: bool = False,
             uses_labels: bool = True) -> Callable[[Callable[..., Any]], Method]:
  """Decorator: registers the core below it under `name` and returns its public function."""
  if needs_layer not in LAYER_NEEDS:
    raise ValueError(f"needs_layer: expected one of {LAYER_NEEDS}, got {needs_layer!r}")

  def add(core: Callable[..., Any]) -> Method:
    if name in _METHODS:
      raise ValueError(f"a method named {name!r} is already registered")
    info = MethodInfo(name=name, title=title, summary=summary, needs_key=needs_key,
                      needs_layer=needs_layer, needs_guided=needs_guided,
                      options=dict(options or {}), cost=cost, core=core,
                      jitted=core if jitted is None else jitted,
                      takes_extra_options=takes_extra_options, uses_labels=uses_labels)
    public = _public(info)
    _METHODS[name] = (info, public)
    return public

  return add


def get(name: str) -> Method:
  """The method registered as `name`; ValueError listing the names otherwise."""
  return _METHODS[_known(name)][1]


def info(name: str) -> MethodInfo:
  """What the registry knows of the method `name` (ValueError if none)."""
  return _METHODS[_known(name)][0]


def names() -> tuple[str, ...]:
  """Registered method names, sorted."""
  return tuple(sorted(_METHODS))


def _known(name: str) -> str:
  if name not in _METHODS:
    raise ValueError(f"unknown method {name!r}; registered: {', '.join(names())}")
  return name


# ------------------------------------------------------------------ option checks


def positive_int(value: Any, name: str) -> int:
  """A Python int >= 1."""
  validation.check_positive_int(value, name)
  return int(value)


def number(low: float | None = None, high: float | None = None, *, low_open: bool = False,
           high_open: bool = False) -> Callable[[Any, str], float]:
  """A check for a finite real number in the given interval, returning a float."""

  def check(value: Any, name: str) -> float:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and bool(np.isfinite(value)))
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
      left = "-inf" if low is None else f"{low:g}"
      right = "inf" if high is None else f"{high:g}"
      interval = f"{'(' if low_open or low is None else '['}{left}, {right}" \
                 f"{')' if high_open or high is None else ']'}"
      raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)

  return check


def one_of(*choices: Any) -> Callable[[Any, str], Any]:
  """A check that the value is one of `choices`."""

  def check(value: Any, name: str) -> Any:
    if not any(value == c and type(value) is type(c) for c in choices):
      raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value

  return check


def no_pass(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """The cost of a map that runs no model pass."""
  del options, shapes
  return PassCount(None, 0, 0)


def one_gradient(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """One gradient pass per image."""
  del options, shapes
  return PassCount("gradient", 1, 1)


def chunked(kind: str, passes: int, chunk: int) -> PassCount:
  """`passes` passes of `kind`, `chunk` of them per compiled step."""
  return PassCount(kind, passes, min(chunk, passes))


def channels_plus_one(options: Mapping[str, Any], shapes: Shapes) -> PassCount:
  """k + 1 forwards (one per channel of the explained layer, and one more), `chunk`
  channels per step."""
  return PassCount("forward", shapes.channels + 1, min(options["chunk"], shapes.channels))


def markdown_table() -> str:
  """Every registered method as a Markdown table: name, what it needs, its options."""
  rows = ["| method | what the map is | needs | options (defaults) |", "|---|---|---|---|"]
  for name in names():
    method = info(name)
    needs = [need for need, present in (
        ("key", method.needs_key), ("layer", method.needs_layer is not None),
        ("guided ReLUs", method.needs_guided)) if present]
    options = ", ".join(f"`{option}={value.default!r}`" for option, value in
                        method.options.items())
    rows.append(f"| `{name}` | {method.title}: {method.summary} | {', '.join(needs) or '-'} | "
                f"{options or '-'} |")
  return "\n".join(rows)
