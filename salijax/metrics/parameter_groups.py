"""The parameter groups of any Classifier, in forward order: what parameter randomisation re-draws.

A group is a top-level subtree of the Classifier's variables. Each leaf's
pytree path is read as
  1. the collection level, skipped: the collection of Flax linen variables (a
     mapping with a "params" key: "params", "batch_stats", ...) or of the
     (params, state) pair of a Haiku function with state;
  2. the levels that every leaf shares, skipped (the `layers` of an Equinox
     `nn.Sequential`, a linen model's only submodule);
  3. the next entry: the leaf's group, a top-level module ("Conv_0") or
     attribute ("conv1", "layers.0" of a Sequential).
Haiku names a submodule "parent/~/child" in one flat dict: its names are read
as levels too, so a BatchNorm's "norm/~/mean_ema" state joins "norm", and the
groups of `hk.nets.ResNet18` are "res_net18/~/block_group_0", ....
A group is named by its path after the collection level, entries (dict keys,
attribute names, sequence indices) joined by "." ("/~/" for Haiku). A salijax
model's groups are merged into its blocks (`salijax.models.parameter_blocks`:
"stem", "layer1.0", ..., "fc"), each named as torchvision names it.

Forward order: `clf.apply` is traced on one image (`jax.make_jaxpr`) and each
leaf is placed at the first operation that reads it, counting the operations
of called sub-programs (jitted functions, custom derivatives) in place; a group
sits at its first-read leaf. A group that the forward pass never reads cannot
change the logits and is not listed.

State leaves are running statistics: linen collections other than "params",
and Haiku's state.

    groups = parameter_groups(clf, images)
    groups.names        # ("fc", "layer4.1", ..., "stem"): from the logits down
"""

import itertools
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

import jax
from jax.extend import core as jax_core

from salijax import models
from salijax.classifier import Classifier
from salijax.compute_dtype import original
from salijax.wrapping.haiku_model import HaikuModel

HAIKU_SEPARATOR = "/~/"  # between a Haiku module's name and its submodule's


class ParameterGroups(NamedTuple):
  """The groups of a Classifier's variables; per-leaf tuples follow `jax.tree.leaves` order."""

  names: tuple[str, ...]  # the groups the forward pass reads, from the logits down
  of_leaf: tuple[str, ...]  # each leaf's group
  state: tuple[bool, ...]  # each leaf: a running statistic (module doc)


def _entry_name(entry: Any) -> str:
  """The name of a path entry: a dict key, attribute name or sequence index."""
  for attribute in ("key", "name", "idx"):
    if hasattr(entry, attribute):
      return str(getattr(entry, attribute))
  return str(entry)


def _has_collections(clf: Classifier, haiku: HaikuModel | None) -> bool:
  if haiku is not None:
    return haiku.with_state
  return isinstance(clf.variables, Mapping) and "params" in clf.variables


def _sub_jaxprs(value: Any) -> Iterator[Any]:
  """The jaxprs in an equation parameter (a jaxpr, a closed one, or a tuple of them)."""
  if isinstance(value, jax_core.ClosedJaxpr):
    yield value.jaxpr
  elif isinstance(value, jax_core.Jaxpr):
    yield value
  elif isinstance(value, tuple | list):
    for item in value:
      yield from _sub_jaxprs(item)


def _first_reads(jaxpr: Any, leaf_of: dict[Any, int], reads: dict[int, int],
                 steps: Iterator[int]) -> None:
  """Fills reads[leaf] = the step of the first operation reading it (`leaf_of`: var -> leaf).

  An equation calling one sub-program with its operands as arguments (jit,
  custom derivatives) is walked inside; any other counts as one step.
  """
  for eqn in jaxpr.eqns:
    inner = [j for value in eqn.params.values() for j in _sub_jaxprs(value)]
    if len(inner) == 1 and len(inner[0].invars) == len(eqn.invars):
      _first_reads(inner[0], {var: leaf_of[outer] for var, outer in
                              zip(inner[0].invars, eqn.invars, strict=True)
                              if isinstance(outer, jax_core.Var) and outer in leaf_of},
                   reads, steps)
      continue
    step = next(steps)
    for var in eqn.invars:
      if isinstance(var, jax_core.Var) and var in leaf_of:
        reads.setdefault(leaf_of[var], step)


def parameter_groups(clf: Classifier, images: jax.Array) -> ParameterGroups:
  """The groups of `clf`'s variables (module doc); `images` f32[B,H,W,3] shape the trace.

  Raises:
    ValueError: a Classifier without variables.
  """
  apply = original(clf.apply)  # a compute dtype's cast would read every leaf first
  model = getattr(apply, "model", None)
  haiku = model if isinstance(model, HaikuModel) else None
  separator = HAIKU_SEPARATOR if haiku else "."
  paths = [tuple(part for entry in path for part in _entry_name(entry).split(separator))
           for path, _ in jax.tree_util.tree_flatten_with_path(clf.variables)[0]]
  if not paths:
    raise ValueError("clf: expected a Classifier with variables to randomise, got none")
  state = (False,) * len(paths)
  if _has_collections(clf, haiku):  # linen: not "params"; Haiku's (params, state): the second
    params = "params" if isinstance(clf.variables, Mapping) else "0"
    state = tuple(path[0] != params for path in paths)
    paths = [path[1:] for path in paths]
  shared = 0
  while all(len(path) > shared + 1 and path[shared] == paths[0][shared] for path in paths):
    shared += 1
  blocks = models.parameter_blocks(clf) or {}
  leaf_groups = [separator.join(path[:shared + 1]) or "variables" for path in paths]
  of_leaf = tuple(blocks.get(name, name) for name in leaf_groups)

  jaxpr = jax.make_jaxpr(apply)(clf.variables, images[:1]).jaxpr
  reads: dict[int, int] = {}
  _first_reads(jaxpr, {var: i for i, var in enumerate(jaxpr.invars[:len(paths)])}, reads,
               itertools.count())
  first: dict[str, int] = {}
  for leaf, step in reads.items():
    first[of_leaf[leaf]] = min(step, first.get(of_leaf[leaf], step))
  names = tuple(sorted(first, key=lambda name: first[name], reverse=True))
  return ParameterGroups(names=names, of_leaf=of_leaf, state=state)
