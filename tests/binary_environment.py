"""The environment of a salijax binary that a test runs beside results computed in-process."""

import os

from salijax import cpu_convolutions


def binary_environment(*xla_flags: str) -> dict[str, str]:
  """os.environ with the tests' persistent compile cache and XLA_FLAGS extended by `xla_flags`.

  Unless XLA_FLAGS choose the convolution kernels, they get this process's (jaxlib's
  default, `cpu_convolutions.YNNPACK_CONVOLUTIONS_FLAG`): a binary would otherwise run XLA's
  own (`salijax.cpu_convolutions`) and round otherwise than the results it is compared with.
  """
  cache = os.environ.get("SALIJAX_TEST_JAX_CACHE",
                         os.path.join(os.environ.get("TMPDIR", "/tmp"), "salijax_test_jax_cache"))
  flags = " ".join([os.environ.get("XLA_FLAGS", ""), *xla_flags]).strip()
  if not cpu_convolutions.chosen(flags):
    flags = f"{flags} {cpu_convolutions.YNNPACK_CONVOLUTIONS_FLAG}".strip()
  return {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache,
          "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5", "XLA_FLAGS": flags}
