"""XLA:CPU's own convolutions instead of YNNPACK's: the binaries' choice on a CPU.

jaxlib 0.10's XLA:CPU hands every convolution, every dot (matrix product) and
reductions to YNNPACK by default (the debug option
`xla_cpu_experimental_ynn_fusion_type`, whose default list is individual
convolutions, individual dots and reductions). On the 2-core Xeon of
BENCHMARKS.md ("Convolutions on XLA:CPU"), XLA's own convolution kernels ran
ResNet18 and VGG11 faster, side by side in one process: the same results to
float32 rounding. YNNPACK's reductions stay: they made VGG11-BN's training
steps 1.4x faster (BatchNorm's batch statistics), though with them YNNPACK
takes plain VGG11's forward (no BatchNorm between its convolutions) as one
call, 3.4x slower at 224 px than XLA's kernels: for such a model, set
`XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=individual_dot`.

XLA reads XLA_FLAGS once, when its first backend starts. `use_xla_convolutions()`
adds `XLA_CONVOLUTIONS_FLAG` (YNNPACK's convolutions off) to XLA_FLAGS;
salijax's binaries call it first thing, before any JAX computation, unless
XLA_FLAGS names the option already (the caller's choice wins:
`YNNPACK_CONVOLUTIONS_FLAG`,
`--xla_cpu_experimental_ynn_fusion_type=+individual_convolution`, keeps
jaxlib's default). In your own code, set XLA_FLAGS before Python starts, call
`use_xla_convolutions()` before your first computation, or compile one function
with `jax.jit(f, compiler_options=XLA_CONVOLUTIONS)`. Other backends (GPU, TPU)
ignore the option.

    from salijax import cpu_convolutions
    cpu_convolutions.use_xla_convolutions()  # before any JAX computation
"""

import os
from collections.abc import MutableMapping

OPTION = "xla_cpu_experimental_ynn_fusion_type"
XLA_CONVOLUTIONS_FLAG = f"--{OPTION}=-individual_convolution"  # jaxlib's default less convolutions
YNNPACK_CONVOLUTIONS_FLAG = f"--{OPTION}=+individual_convolution"  # jaxlib's default, chosen
# The same two ways as compiler options of one jax.jit, which take exact lists (no +/-).
XLA_CONVOLUTIONS = {OPTION: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}
YNNPACK_CONVOLUTIONS = {
    OPTION: f"{XLA_CONVOLUTIONS[OPTION]},LIBRARY_FUSION_TYPE_INDIVIDUAL_CONVOLUTION"}


def chosen(xla_flags: str) -> bool:
  """Whether an XLA_FLAGS string sets `OPTION` (chooses the kernels itself)."""
  return f"--{OPTION}=" in xla_flags


def use_xla_convolutions(environ: MutableMapping[str, str] = os.environ) -> bool:
  """Adds `XLA_CONVOLUTIONS_FLAG` to environ["XLA_FLAGS"] unless they are `chosen`; True if
  it added it.

  Takes effect only before the first JAX computation of the process.
  """
  flags = environ.get("XLA_FLAGS", "")
  if chosen(flags):
    return False
  environ["XLA_FLAGS"] = f"{flags} {XLA_CONVOLUTIONS_FLAG}".strip()
  return True
