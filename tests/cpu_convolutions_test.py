"""salijax.cpu_convolutions: XLA_FLAGS edited as documented; the options do what they say."""

import os
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from salijax import cpu_convolutions

EPS32 = float(np.finfo(np.float32).eps)
YNN_FUSION = '"kind":"__ynn_fusion"'  # how a compiled XLA:CPU program marks YNNPACK's calls
_CONVOLUTION = ("NHWC", "HWIO", "NHWC")


def _convolve(images, kernel):
  return jax.lax.conv_general_dilated(images, kernel, (1, 1), "SAME",
                                      dimension_numbers=_CONVOLUTION)


def test_the_flag_is_added_to_empty_or_other_flags():
  environ = {}
  assert cpu_convolutions.use_xla_convolutions(environ)
  assert environ == {"XLA_FLAGS": cpu_convolutions.XLA_CONVOLUTIONS_FLAG}
  environ = {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
  assert cpu_convolutions.use_xla_convolutions(environ)
  assert environ["XLA_FLAGS"] == f"--xla_cpu_max_isa=AVX2 {cpu_convolutions.XLA_CONVOLUTIONS_FLAG}"


def test_the_dots_only_flag_is_added_and_no_other():
  environ = {"XLA_FLAGS": "--xla_cpu_max_isa=AVX2"}
  assert cpu_convolutions.use_xla_convolutions(environ, flag=cpu_convolutions.DOTS_ONLY_FLAG)
  assert environ["XLA_FLAGS"] == f"--xla_cpu_max_isa=AVX2 {cpu_convolutions.DOTS_ONLY_FLAG}"
  with pytest.raises(ValueError, match="flag: expected"):
    cpu_convolutions.use_xla_convolutions({}, flag=cpu_convolutions.YNNPACK_CONVOLUTIONS_FLAG)


@pytest.mark.parametrize("choice", ["+individual_convolution", "", "individual_dot"])
def test_a_choice_in_xla_flags_wins(choice):
  flags = f"--xla_cpu_max_isa=AVX2 --xla_cpu_experimental_ynn_fusion_type={choice}"
  environ = {"XLA_FLAGS": flags}
  assert not cpu_convolutions.use_xla_convolutions(environ)
  assert environ == {"XLA_FLAGS": flags}


def _mixed(images, kernel, matrix):
  """A convolution, elementwise operations, reductions and a dot: each kind of YNNPACK call."""
  features = jnp.tanh(_convolve(images, kernel)) * 2.0 + 1.0
  return (features.sum(axis=(1, 2)) @ matrix, (images * images).sum(axis=(1, 2)),
          features.max(axis=-1))


def _without_metadata(text: str) -> str:
  return re.sub(r"metadata=\{[^}]*\}", "", text)


def test_ynnpack_convolutions_is_jaxlibs_default():
  if jax.default_backend() != "cpu":
    pytest.skip("XLA:CPU's option: other backends ignore it")
  arguments = (jnp.ones((8, 32, 32, 32)), jnp.ones((3, 3, 32, 32)), jnp.ones((32, 64)))
  lowered = jax.jit(_mixed).lower(*arguments)
  default = lowered.compile().as_text()
  ynnpack = lowered.compile(compiler_options=cpu_convolutions.YNNPACK_CONVOLUTIONS).as_text()
  assert _without_metadata(ynnpack) == _without_metadata(default)


def test_what_each_list_hands_to_ynnpack():
  """YNNPACK's calls of a convolution, a dot and a reduction under each list."""
  if jax.default_backend() != "cpu":
    pytest.skip("XLA:CPU's option: other backends ignore it")
  programs = {"convolution": (_convolve, (jnp.ones((2, 8, 8, 32)), jnp.ones((3, 3, 32, 32)))),
              "dot": (jnp.matmul, (jnp.ones((64, 64)), jnp.ones((64, 64)))),
              "reduction": (lambda a: (a * a).sum(axis=(1, 2)), (jnp.ones((8, 32, 32, 32)),))}
  calls = {name: [jax.jit(program).lower(*example).compile(compiler_options=options).as_text()
                  .count(YNN_FUSION)
                  for options in (None, cpu_convolutions.YNNPACK_CONVOLUTIONS,
                                  cpu_convolutions.XLA_CONVOLUTIONS, cpu_convolutions.DOTS_ONLY)]
           for name, (program, example) in programs.items()}
  assert calls == {"convolution": [1, 1, 0, 0], "dot": [1, 1, 1, 1], "reduction": [1, 1, 1, 0]}


def _convolve_float64(images: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """The "SAME" 3 x 3 convolution in float64 numpy: f[B,H,W,C], f[3,3,C,O] -> f[B,H,W,O]."""
  height, width = images.shape[1:3]
  padded = np.pad(images.astype(np.float64), ((0, 0), (1, 1), (1, 1), (0, 0)))
  return sum(np.einsum("bhwc,co->bhwo", padded[:, dy:dy + height, dx:dx + width],
                       kernel[dy, dx].astype(np.float64))
             for dy in range(3) for dx in range(3))


def test_both_kernels_give_the_convolution_to_float32_rounding():
  key_images, key_kernel = jax.random.split(jax.random.key(0))
  images = np.asarray(jax.random.normal(key_images, (2, 12, 12, 32)))
  kernel = np.asarray(jax.random.normal(key_kernel, (3, 3, 32, 24)))
  exact = _convolve_float64(images, kernel)
  # Each output sums K = 3 * 3 * 32 products in float32, in some order: within K eps of the
  # sum of their magnitudes (the convolution of |images| with |kernel|).
  bound = 3 * 3 * 32 * EPS32 * _convolve_float64(np.abs(images), np.abs(kernel))
  for options in (cpu_convolutions.XLA_CONVOLUTIONS, cpu_convolutions.YNNPACK_CONVOLUTIONS):
    result = np.asarray(jax.jit(_convolve, compiler_options=options)(images, kernel))
    assert np.all(np.abs(result - exact) <= bound), options


@pytest.mark.parametrize(("flag", "ynnpack_calls"), [
    (cpu_convolutions.XLA_CONVOLUTIONS_FLAG, ["0", "1", "1", "1"]),
    (cpu_convolutions.YNNPACK_CONVOLUTIONS_FLAG, ["1", "1", "1", "1"]),
    (cpu_convolutions.DOTS_ONLY_FLAG, ["0", "1", "0", "1"])])
def test_a_process_started_with_a_flag_runs_its_kernels(flag, ynnpack_calls):
  """XLA accepts each flag: YNNPACK's calls of a convolution, a dot and a reduction, and of
  the reduction compiled with `XLA_CONVOLUTIONS` (compiler options override the flag)."""
  program = (
      "import jax, jax.numpy as jnp\n"
      "conv = lambda x, k: jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',"
      " dimension_numbers=('NHWC', 'HWIO', 'NHWC'))\n"
      "print(jax.jit(conv).lower(jnp.ones((2, 8, 8, 32)), jnp.ones((3, 3, 32, 32)))"
      f".compile().as_text().count({YNN_FUSION!r}))\n"
      "print(jax.jit(jnp.matmul).lower(jnp.ones((64, 64)), jnp.ones((64, 64)))"
      f".compile().as_text().count({YNN_FUSION!r}))\n"
      "square_sum = jax.jit(lambda a: (a * a).sum(axis=(1, 2))).lower(jnp.ones((8, 32, 32, 32)))\n"
      f"print(square_sum.compile().as_text().count({YNN_FUSION!r}))\n"
      "from salijax.cpu_convolutions import XLA_CONVOLUTIONS\n"
      "print(square_sum.compile(compiler_options=XLA_CONVOLUTIONS).as_text()"
      f".count({YNN_FUSION!r}))\n")
  environ = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"}
  environ.update(JAX_PLATFORMS="cpu", XLA_FLAGS=flag)
  run = subprocess.run([sys.executable, "-c", program], env=environ, capture_output=True,
                       text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  assert run.stdout.split() == ynnpack_calls
