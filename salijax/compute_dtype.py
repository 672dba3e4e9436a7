"""The compute dtype of the model forwards: bfloat16 (or float16) forwards, float32 everywhere else.

    fast = with_compute_dtype(clf, "bfloat16")                  # a Classifier
    maps = methods.get("rise")(clf, images, labels, key=key, compute_dtype="bfloat16")
    aucs = metrics.insertion_deletion(clf, images, maps, compute_dtype="bfloat16")

`with_compute_dtype(clf, dtype)` is the Classifier whose apply, features, head
and guided_apply cast the floating leaves of the variables and their floating
inputs (the images f32[B,H,W,3], head's activations) to `dtype`, run the
model's own function, and return its floating outputs as float32. The model's
convolutions and matmuls run in `dtype`; everything the methods and metrics do
around the forwards stays float32: the images and their perturbations, the
softmax, the gradients with respect to the float32 images (the transpose of
the cast), and every sum over masks, samples, steps or pixels (RISE's
weighted sum, LIME's ridge fit, the AUCs). `clf.variables` stay as they are
(float32): the cast happens inside the compiled program, so the metrics that
re-draw or randomise the weights see the model's own tree.

"float32" gives back the model's own functions (no cast anywhere), also from a
Classifier already cast. A cast function compares equal to another of the same
function and dtype, and the functions are the Classifier's static fields: a
jitted method compiles once per (model, dtype), and the dtype is part of every
jit cache key.

Methods (`salijax.methods.registry`) and the metrics that run the model
(`takes_compute_dtype`) take `compute_dtype=None`: None runs the Classifier as
given (float32 unless it was cast), a dtype casts it first.
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from salijax.classifier import Classifier

DTYPES = ("float32", "bfloat16", "float16")
FUNCTIONS = ("apply", "features", "head", "guided_apply")  # the Classifier's model functions


def dtype_name(value: Any, name: str = "compute_dtype") -> str:
  """"float32", "bfloat16" or "float16" for that name or dtype (jnp.bfloat16, np.float32, ...).

  Raises:
    ValueError: another dtype or name; TypeError: not a dtype at all.
  """
  if isinstance(value, str):
    dtype = value
  else:
    try:
      dtype = jnp.dtype(value).name
    except TypeError:
      raise TypeError(f"{name} must be one of {list(DTYPES)} (a name or a dtype), got "
                      f"{value!r}") from None
  if dtype not in DTYPES:
    raise ValueError(f"{name} must be one of {list(DTYPES)} (a name or a dtype), got {value!r}")
  return dtype


def _floating(value: Any) -> bool:
  return hasattr(value, "dtype") and jnp.issubdtype(value.dtype, jnp.floating)


def _cast(tree: Any, dtype: Any) -> Any:
  """Every floating array leaf of `tree` as `dtype`; other leaves unchanged."""
  return jax.tree.map(lambda leaf: leaf.astype(dtype) if _floating(leaf) else leaf, tree)


@dataclasses.dataclass(frozen=True)
class CastFunction:
  """`function(variables, *inputs)` run in `dtype`: floating variables and inputs cast to it,
  floating outputs returned as float32 (module doc)."""

  function: Callable[..., Any]
  dtype: str  # one of DTYPES

  def __call__(self, variables: Any, *inputs: Any) -> Any:
    dtype = jnp.dtype(self.dtype)
    outputs = self.function(_cast(variables, dtype), *(_cast(x, dtype) for x in inputs))
    return _cast(outputs, jnp.float32)


def original(function: Any) -> Any:
  """The model's own function under a `CastFunction` (any other function as it is)."""
  return function.function if isinstance(function, CastFunction) else function


def compute_dtype_of(clf: Classifier) -> str:
  """The dtype `clf`'s forwards run in: a cast's, else "float32"."""
  return clf.apply.dtype if isinstance(clf.apply, CastFunction) else "float32"


def with_compute_dtype(clf: Classifier, dtype: Any) -> Classifier:
  """`clf` with its forwards in `dtype` (a DTYPES name or dtype) and float32 outputs (module doc).

  Raises:
    TypeError: `clf` is not a Classifier; ValueError/TypeError: a bad `dtype` (`dtype_name`).
  """
  if not isinstance(clf, Classifier):
    raise TypeError(f"clf: expected a salijax.Classifier, got {type(clf).__name__}")
  dtype = dtype_name(dtype)

  def cast(function: Any) -> Any:
    function = original(function)
    return function if function is None or dtype == "float32" else CastFunction(function, dtype)

  return clf.replace(**{field: cast(getattr(clf, field)) for field in FUNCTIONS})


def takes_compute_dtype(metric: Callable[..., Any]) -> Callable[..., Any]:
  """Decorator: `metric`, a function of a Classifier argument `clf`, with a keyword
  `compute_dtype=None` that casts `clf` (`with_compute_dtype`) before the metric runs."""
  signature = inspect.signature(metric)
  if "clf" not in signature.parameters:
    raise TypeError(f"{metric.__name__}: takes_compute_dtype needs an argument named clf")

  @functools.wraps(metric)
  def with_dtype(*args: Any, compute_dtype: Any = None, **kwargs: Any) -> Any:
    if compute_dtype is not None:
      dtype = dtype_name(compute_dtype)
      bound = signature.bind(*args, **kwargs)
      bound.arguments["clf"] = with_compute_dtype(bound.arguments["clf"], dtype)
      args, kwargs = bound.args, bound.kwargs
    return metric(*args, **kwargs)

  parameters = list(signature.parameters.values())
  position = len(parameters)  # the last keyword, before a **kwargs
  if parameters[-1].kind == inspect.Parameter.VAR_KEYWORD:
    position -= 1
  parameters.insert(position, inspect.Parameter("compute_dtype", inspect.Parameter.KEYWORD_ONLY,
                                                default=None))
  with_dtype.__signature__ = signature.replace(parameters=parameters)
  with_dtype.__doc__ = (inspect.cleandoc(metric.__doc__ or "") + "\n\ncompute_dtype: None (the"
                        " Classifier as given) or the dtype of the model's forwards, \"float32\","
                        " \"bfloat16\" or \"float16\" (salijax.compute_dtype); the scores and"
                        " their sums stay float32.")
  return with_dtype

