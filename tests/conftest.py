"""Shared pytest fixtures."""

import os

import pytest


@pytest.fixture(scope="session")
def torch():
  """The CPU torch used as a reference: skipped locally if absent, required in CI."""
  if os.environ.get("CI"):
    import torch as torch_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return torch_module
  return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def torch_models(torch):
  """experiments/torch_models.py: torchvision's architectures in plain torch, random weights."""
  del torch  # torch_models imports it
  from experiments import torch_models as torch_models_module  # noqa: PLC0415 - needs torch
  return torch_models_module


@pytest.fixture(scope="session")
def captum(torch):
  """Captum (torch attribution library), another implementation to agree with: like `torch`."""
  del torch
  if os.environ.get("CI"):
    import captum as captum_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return captum_module
  return pytest.importorskip("captum")


@pytest.fixture(scope="session")
def zennit(torch):
  """zennit (torch LRP library) with its torchvision canonizers, the reference of `lrp`: like
  `torch`."""
  del torch
  if not os.environ.get("CI"):  # CI must have them: the imports below fail, not skip.
    pytest.importorskip("torchvision")
    pytest.importorskip("zennit")
  import zennit.attribution  # noqa: PLC0415
  import zennit.composites  # noqa: PLC0415
  import zennit.torchvision  # noqa: PLC0415
  return zennit


@pytest.fixture(scope="session")
def torchvision(torch):
  """torchvision (0.29.1), the reference of the EfficientNet and MobileNet ports: like `torch`."""
  del torch
  if os.environ.get("CI"):
    import torchvision as torchvision_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return torchvision_module
  return pytest.importorskip("torchvision")


@pytest.fixture(scope="session")
def quantus():
  """Quantus (XAI evaluation library), the localisation metrics' anchor: skipped locally if
  absent, required in CI."""
  if os.environ.get("CI"):
    import quantus as quantus_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return quantus_module
  return pytest.importorskip("quantus")


@pytest.fixture(scope="session")
def lime_package():
  """The `lime` package (0.2.0.1), LIME's anchor: its `lime_image` and `lime_base` modules as
  attributes; skipped locally if absent, required in CI."""
  if os.environ.get("CI"):
    import lime as lime_module  # noqa: PLC0415 - CI must have it: fail, not skip.
  else:
    lime_module = pytest.importorskip("lime")
  import lime.lime_base  # noqa: PLC0415, F401 - the submodules, as attributes of lime_module
  import lime.lime_image  # noqa: PLC0415, F401
  return lime_module



@pytest.fixture(scope="session")
def saliency_pair():
  """PAIR's `saliency` package (0.2.1), the PIC metrics' anchor: its `saliency.metrics.pic`
  module; skipped locally if absent, required in CI."""
  if os.environ.get("CI"):
    import saliency.metrics.pic as pic_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return pic_module
  return pytest.importorskip("saliency.metrics.pic")


@pytest.fixture(scope="session")
def openai():
  """The `openai` package, the client of explain_image's commentary (tests talk to a local
  stub server): skipped locally if absent, required in CI."""
  if os.environ.get("CI"):
    import openai as openai_module  # noqa: PLC0415 - CI must have it: fail, not skip.
    return openai_module
  return pytest.importorskip("openai")


@pytest.fixture(scope="session")
def chromium():
  """The path of headless Chromium (Debian's `chromium`), the HTML pages' browser: skipped
  locally if absent, required in CI (.ci/run installs it)."""
  import shutil  # noqa: PLC0415

  path = shutil.which("chromium")
  if path is None:
    if os.environ.get("CI"):
      pytest.fail("chromium is not installed (apt-get install -y chromium)")
    pytest.skip("chromium is not installed")
  return path


def pytest_configure(config):
  """Pins float32 matmuls and shares compiled programs between test processes and runs.

  Matmul precision: XLA's default runs float32 convolutions and matmuls as TF32 on NVIDIA
  GPUs and as bfloat16 passes on TPUs; the tests check definitions against float32/float64
  references with tolerances from float32 arithmetic, so the whole suite runs at "highest"
  (true float32 on every backend; XLA:CPU computes float32 either way). A test of another
  precision sets it itself (`jax.default_matmul_precision(...)`, or a compute dtype:
  salijax.compute_dtype). The persistent compilation cache shares compiled programs.
  """
  del config
  import tempfile  # noqa: PLC0415

  import jax  # noqa: PLC0415

  jax.config.update("jax_default_matmul_precision", "highest")
  cache = os.environ.get("SALIJAX_TEST_JAX_CACHE",
                         os.path.join(tempfile.gettempdir(), "salijax_test_jax_cache"))
  jax.config.update("jax_compilation_cache_dir", cache)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@pytest.fixture(autouse=True, scope="module")
def release_compiled_programs():
  """Drops a test module's compiled programs from memory when it is done: a worker runs
  hundreds of modules, and their in-memory executables would add up to gigabytes (the
  persistent cache on disk still serves a later compilation)."""
  yield
  import gc  # noqa: PLC0415

  import jax  # noqa: PLC0415

  jax.clear_caches()
  gc.collect()
