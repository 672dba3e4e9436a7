"""The slim install: the methods, metrics and perturbations import and run without the
benchmark's packages.

`pip install salijax` (no extras) installs jax, flax, optax, numpy, ml-dtypes and scikit-image
(and what they require); the benchmark's packages come with the `benchmark` extra. Each test
runs a fresh interpreter whose `sys.meta_path` refuses the benchmark's (and the tests') packages.
absl is not refused: flax (`flax.linen.recurrent`) and optax import it, and both require absl-py.
scipy and PIL are installed with jax and scikit-image but must not be imported.
"""

import os
import subprocess
import sys

BLOCKED = ("tensorflow_datasets", "tensorflow", "orbax", "ml_collections", "matplotlib",
           "tensorboardX", "tqdm", "scipy", "PIL", "torch", "captum", "quantus", "haiku", "equinox",
           "flaxmodels", "jimm")

BLOCKER = f"""
import sys

BLOCKED = {BLOCKED!r}


class Blocker:
  def find_spec(self, name, path=None, target=None):
    if name.partition(".")[0] in BLOCKED:
      raise ImportError(f"blocked by the slim-install test: {{name}}")
    return None


sys.meta_path.insert(0, Blocker())
"""

# Imports the core and runs one method, one metric and two perturbations on a tiny classifier.
SLIM_RUN = """
import jax.numpy as jnp

import salijax
import salijax.methods
import salijax.metrics
import salijax.perturbations
import salijax.wrapping


def apply(variables, images):
  return images.mean(axis=(1, 2)) @ variables["w"]


clf = salijax.Classifier(variables={"w": jnp.arange(6.0).reshape(3, 2)}, apply=apply)
images = jnp.linspace(0.0, 1.0, 2 * 8 * 8 * 3).reshape(2, 8, 8, 3)
maps = salijax.methods.gradient(clf, images)
assert maps.shape == (2, 8, 8), maps.shape
sparseness = salijax.metrics.complexity(maps).sparseness
assert sparseness.shape == (2,) and bool(jnp.isfinite(sparseness).all()), sparseness
for name in ("rotate45", "fgsm0.1"):
  perturbed = salijax.perturbations.perturb(clf, images, jnp.array([0, 1]), name=name)
  assert perturbed.shape == images.shape and bool((perturbed != images).any()), name
imported = sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED)
assert not imported, imported
print("OK")
"""


def _run(code):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True,
                        env=env, timeout=300, check=False)


def test_core_imports_and_runs_without_benchmark_packages():
  result = _run(SLIM_RUN)
  assert result.returncode == 0, result.stderr
  assert result.stdout.splitlines()[-1:] == ["OK"], result.stdout + result.stderr


def test_blocker_blocks_the_benchmark():
  result = _run("""
try:
  import salijax.pipeline
except ImportError as error:
  print("blocked:", error)
else:
  print("imported")
""")
  assert result.returncode == 0, result.stderr
  assert result.stdout.startswith("blocked: blocked by the slim-install test"), result.stdout
