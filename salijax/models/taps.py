"""Taps: reading or replacing the activation at a named layer of a model.

Every salijax model passes each named activation of its forward pass through a
`Probe` (the names are torchvision module names; each model's docstring lists
them). With `Probe(tap)`, the forward pass stops at the tap and the model
returns the activation there. With `Probe(tap, value)`, the activation at the
tap is replaced by `value` and the forward pass goes on, every other activation
(a residual block's skip input, say) being computed from the images as usual:
the model's logits then are an exact "head" from that tap.

Stopping early is an exception, `TapReached`, raised by the probe inside the
forward pass and caught by the model's `__call__`.
"""

from collections.abc import Sequence

import jax


class TapReached(Exception):  # a control-flow signal, not an error
  """Carries the activation at the tap out of the forward pass."""

  def __init__(self, activation: jax.Array):
    super().__init__("tap reached")
    self.activation = activation


def check_tap(tap: str, names: Sequence[str]) -> None:
  """Raises ValueError naming `layer` if `tap` is not one of `names`."""
  if tap not in names:
    examples = ", ".join(repr(n) for n in names[:4] + names[-4:])
    raise ValueError(
        f"layer: expected a tap name of this model ({len(names)} names, e.g. "
        f"{examples}; salijax.models.tap_names lists them all), got {tap!r}")


class Probe:
  """Watches the activations of one forward pass for the tap (see module doc)."""

  def __init__(self, tap: str | None, value: jax.Array | None = None):
    if tap is None and value is not None:
      raise ValueError("tap_value: expected None when tap is None, got an array")
    self.tap = tap
    self.value = value

  def __call__(self, name: str, activation: jax.Array) -> jax.Array:
    """The activation named `name`, or the tap value in its place.

    Raises:
      TapReached: `name` is the tap and no replacement value was given.
      ValueError: the replacement value's shape differs from the activation's.
    """
    if name != self.tap:
      return activation
    if self.value is None:
      raise TapReached(activation)
    if tuple(self.value.shape) != tuple(activation.shape):
      raise ValueError(
          f"tap_value: expected the shape of the activation at {name!r}, "
          f"{tuple(activation.shape)}, got {tuple(self.value.shape)}")
    return self.value
