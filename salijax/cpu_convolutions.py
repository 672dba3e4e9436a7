"""Which kernels XLA:CPU hands to YNNPACK: the binaries' choice on a CPU.

jaxlib 0.10's XLA:CPU hands every convolution, every dot (matrix product) and
reductions to YNNPACK by default (the debug option
`xla_cpu_experimental_ynn_fusion_type`, whose default list is individual
convolutions, individual dots and reductions). On the machines of
BENCHMARKS.md ("Convolutions on XLA:CPU"), side by side in one process, the
same results to float32 rounding:
- `XLA_CONVOLUTIONS` (XLA's own convolutions, YNNPACK's dots and reductions)
  ran ResNet18's passes and every training step faster than the default;
  without YNNPACK's reductions training steps ran up to 1.4x slower (VGG11-BN's
  batch statistics), and metrics that sum over a short axis inside loops slower.
- `DOTS_ONLY`: with reductions in its list YNNPACK takes the whole forward of
  a model without BatchNorm between its convolutions (plain VGG11) as one
  call, 2.4x slower at 224 px than with YNNPACK for the dots only; the dots
  only ran `experiments.explain_image`'s default methods 1.1-1.4x faster.

So the binaries start with `XLA_CONVOLUTIONS_FLAG` (`experiments.explain_image`,
which only explains, with `DOTS_ONLY_FLAG`).

XLA reads XLA_FLAGS once, when its first backend starts. `use_xla_convolutions()`
adds the flag to XLA_FLAGS; the binaries call it first thing, before any JAX
computation, unless XLA_FLAGS names the option already (the caller's choice
wins: `YNNPACK_CONVOLUTIONS_FLAG` keeps jaxlib's default). In your own code, set
XLA_FLAGS before Python starts, call `use_xla_convolutions()` before your first
computation, or compile one function with
`jax.jit(f, compiler_options=XLA_CONVOLUTIONS)`. Other backends (GPU, TPU)
ignore the option.

    from salijax import cpu_convolutions
    cpu_convolutions.use_xla_convolutions()  # before any JAX computation
"""

import os
from collections.abc import MutableMapping

OPTION = "xla_cpu_experimental_ynn_fusion_type"
XLA_CONVOLUTIONS_FLAG = f"--{OPTION}=-individual_convolution"  # jaxlib's default less convolutions
YNNPACK_CONVOLUTIONS_FLAG = f"--{OPTION}=+individual_convolution"  # jaxlib's default, chosen
DOTS_ONLY_FLAG = f"--{OPTION}=individual_dot"  # YNNPACK for the dots only
# The same three as compiler options of one jax.jit, which take exact lists (no +/-).
_DOT, _REDUCE, _CONVOLUTION = (f"LIBRARY_FUSION_TYPE_{kind}"
                               for kind in ("INDIVIDUAL_DOT", "REDUCE", "INDIVIDUAL_CONVOLUTION"))
XLA_CONVOLUTIONS = {OPTION: f"{_DOT},{_REDUCE}"}
YNNPACK_CONVOLUTIONS = {OPTION: f"{_DOT},{_REDUCE},{_CONVOLUTION}"}
DOTS_ONLY = {OPTION: _DOT}


def chosen(xla_flags: str) -> bool:
  """Whether an XLA_FLAGS string sets `OPTION` (chooses the kernels itself)."""
  return f"--{OPTION}=" in xla_flags


def use_xla_convolutions(environ: MutableMapping[str, str] = os.environ, *,
                         flag: str = XLA_CONVOLUTIONS_FLAG) -> bool:
  """Adds `flag` (`XLA_CONVOLUTIONS_FLAG` or `DOTS_ONLY_FLAG`) to environ["XLA_FLAGS"]
  unless they are `chosen`; True if it added it.

  Takes effect only before the first JAX computation of the process.
  """
  if flag not in (XLA_CONVOLUTIONS_FLAG, DOTS_ONLY_FLAG):
    raise ValueError(f"flag: expected {XLA_CONVOLUTIONS_FLAG!r} or {DOTS_ONLY_FLAG!r}, "
                     f"got {flag!r}")
  flags = environ.get("XLA_FLAGS", "")
  if chosen(flags):
    return False
  environ["XLA_FLAGS"] = f"{flags} {flag}".strip()
  return True

