"""Learning-rate schedule: linear warm-up, then cosine decay to a floor.

With peak `p`, `W` warm-up steps, `T` total steps and floor fraction `f`:

  lr(s) = p * (s + 1) / W                                    for s < W
  lr(s) = p * (f + (1 - f) * (1 + cos(pi * t)) / 2),  t = (s - W) / (T - W)

`t` is clipped to [0, 1], so steps past `T` stay at the floor `p * f`. The
warm-up counts from `s + 1` so that the first update (step 0) already moves
the weights. The floor is a fraction of the peak, in [0, 1): a floor at or
above the peak would turn the "decay" into a rise.
"""

import jax.numpy as jnp
import optax


def warmup_cosine(peak_value: float, *, total_steps: int, warmup_steps: int,
                  floor: float) -> optax.Schedule:
  """Returns the schedule `step (int) -> learning rate f32[]` of the module doc.

  Args:
    peak_value: the learning rate at the end of the warm-up, > 0.
    total_steps: the number of optimisation steps of the run, >= 1.
    warmup_steps: steps of linear warm-up, in [0, total_steps].
    floor: the final learning rate as a fraction of `peak_value`, in [0, 1).
  """
  if not peak_value > 0:
    raise ValueError(f"peak_value: expected > 0, got {peak_value!r}")
  if total_steps < 1:
    raise ValueError(f"total_steps: expected >= 1, got {total_steps!r}")
  if not 0 <= warmup_steps <= total_steps:
    raise ValueError(
        f"warmup_steps: expected in [0, total_steps={total_steps}], got {warmup_steps!r}")
  if not 0 <= floor < 1:
    raise ValueError(
        f"floor: expected a fraction of the peak in [0, 1), got {floor!r}")
  decay_steps = max(total_steps - warmup_steps, 1)

  def schedule(step):
    step = jnp.asarray(step, jnp.float32)
    warmup = peak_value * (step + 1) / max(warmup_steps, 1)
    t = jnp.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
    cosine = peak_value * (floor + (1 - floor) * 0.5 * (1 + jnp.cos(jnp.pi * t)))
    return jnp.where(step < warmup_steps, warmup, cosine)

  return schedule
