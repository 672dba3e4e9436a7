"""The method registry: every saliency method under one name and one call shape.

  method = salijax.methods.get("rise")
  maps = method(clf, images, labels, key=jax.random.key(0))   # f32[B,H,W]
  maps = method(clf, images, key=jax.random.key(0))           # labels=None: the predicted class
"""

from collections.abc import Callable
from typing import Any, Protocol

import jax

from salijax.classifier import Classifier


class Method(Protocol):
  """(clf, images f32[B,H,W,3], labels i32[B] | None, *, key, **hyperparameters) -> f32[B,H,W].

  labels=None explains each image's predicted class (the argmax of its logits).
  """

  def __call__(self, clf: Classifier, images: Any, labels: Any = None, *,
               key: jax.Array | None = None, **hyperparameters: Any) -> jax.Array: ...


_METHODS: dict[str, Method] = {}


def register(name: str) -> Callable[[Method], Method]:
  """Decorator adding a method to the registry under `name`."""
  def add(method: Method) -> Method:
    if name in _METHODS:
      raise ValueError(f"a method named {name!r} is already registered")
    _METHODS[name] = method
    return method
  return add


def get(name: str) -> Method:
  """The method registered as `name`; ValueError listing the names otherwise."""
  if name not in _METHODS:
    raise ValueError(f"unknown method {name!r}; registered: {', '.join(names())}")
  return _METHODS[name]


def names() -> tuple[str, ...]:
  """Registered method names, sorted."""
  return tuple(sorted(_METHODS))
