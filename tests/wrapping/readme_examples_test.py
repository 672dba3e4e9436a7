"""README's "Explain your own model" examples run as written, in order, in one namespace."""

import pathlib
import re

import jax.numpy as jnp
import numpy as np
import wrapped_checks

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Explain your own model"


def _section_code_blocks() -> list[str]:
  text = README.read_text()
  start = text.index(SECTION)
  end = text.find("\n## ", start + len(SECTION))
  return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_every_framework_has_an_example():
  blocks = _section_code_blocks()
  assert len(blocks) == 5
  for framework in ("flax.linen", "from flax import nnx", "haiku", "equinox", "linear_model"):
    assert any(framework in block for block in blocks), framework


def test_readme_examples_run():
  for needed in ("haiku", "equinox"):
    wrapped_checks.extra_module(needed)
  namespace: dict = {}
  for block in _section_code_blocks():
    exec(compile(block, str(README), "exec"), namespace)  # noqa: S102 - README's own code
    for name in ("cams", "rise", "maps", "lime", "guided"):
      if name in namespace:
        value = np.asarray(namespace.pop(name))
        assert value.shape == (4, 32, 32) and np.isfinite(value).all(), name
  assert jnp.isfinite(namespace["scores"].insertion_auc).all()
