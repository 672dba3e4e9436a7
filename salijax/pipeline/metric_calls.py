"""The benchmark's extra metrics (config.metrics): any catalogued metric, called per unit.

The evaluation stage always computes its fixed metrics (insertion/deletion,
confidence change, complexity, the pointing games); config.metrics adds any
metric of `salijax.metrics` that has a catalogue entry
(`salijax.metrics.catalogue`) with per-image fields, called with the options
config.metric_options.<metric> (keyword arguments of the function). The
entry's `kind` says how it is called (`call`):

  "model"   fn(clf, images, maps, labels, *, key=..., **options)
  "region"  fn(maps, region, **options)      the object's masks or boxes, moved with the image
  "maps"    fn(maps, **options)
  "method"  fn(method, clf, images, labels, *, key, method_options, **options): the unit's
            method (salijax.methods.get) with its config.method_options

The benchmark's own defaults (`BENCHMARK_DEFAULTS`, where the signature takes
them and config.metric_options does not set them): allow_constant_maps=True,
so that constant maps (the Fake-CAM control) are scored with the metric's
tie rule, as the fixed insertion/deletion is.

A metric with a `key` parameter (a random one) gets
`metric_key(seed, run, method, batch, metric)`: the same for every label mode
and perturbation of a batch (as the explain stage's method keys), and
independent of the unit order and the number of processes.

    check_metric("localisation")                     # ValueError: not catalogued, no convention
    accepted_options("localisation")                 # ("k", "ties", "attribution", ...)
    result = call("localisation", maps=maps, region=masks, options={"k": 50})
"""

import inspect
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import jax

from salijax import methods, metrics, parallel
from salijax.metrics import catalogue

# Keyword arguments the benchmark gives itself, never options.
RESERVED = ("key", "method_options", "compute_dtype")
# Options the benchmark sets where the metric takes them and the config does not (module doc).
BENCHMARK_DEFAULTS = {"allow_constant_maps": True}


def function(name: str) -> Callable[..., Any]:
  """The function `name` of salijax.metrics."""
  return getattr(metrics, name)


def _parameters(name: str) -> list[inspect.Parameter]:
  return list(inspect.signature(function(name)).parameters.values())


def signature_text(name: str) -> str:
  """"name(maps, region, *, k=1000, ...)": the metric's signature, for error messages."""
  return f"{name}{inspect.signature(function(name))}"


def check_metric(name: str) -> None:
  """Raises ValueError unless `name` is a catalogued metric the benchmark can call per unit:
  exported by salijax.metrics, with a calling convention (`catalogue.POSITIONAL`) its signature
  follows and at least one per-image field."""
  if name not in catalogue.names():
    raise ValueError(f"unknown metric {name!r}; catalogued: {', '.join(catalogue.names())}")
  if not callable(getattr(metrics, name, None)):
    raise ValueError(f"{name!r} is catalogued but salijax.metrics exports no function {name}")
  info = catalogue.info(name)
  if info.kind is None:
    raise ValueError(f"{name}: no calling convention for a metric of both the model and the "
                     "region")
  if not info.per_image_fields():
    raise ValueError(f"{name}: none of its fields {dict(info.fields)} has one value per image;"
                     " the benchmark cannot store it per image")
  positional = catalogue.POSITIONAL[info.kind]
  params = _parameters(name)
  leading = params[:len(positional)]
  ok = len(leading) == len(positional) and all(
      p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in leading)
  ok = ok and all(p.default is not p.empty or p.name == "key" or p.kind in (
      p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params[len(positional):])
  if not ok:
    raise ValueError(
        f"{name}: a {info.kind!r} metric is called as {name}({', '.join(positional)}, **options)"
        f" with every option optional, but its signature is {signature_text(name)}")


def _has_key(name: str) -> bool:
  return any(p.name == "key" or p.kind == p.VAR_KEYWORD for p in _parameters(name))


def accepted_options(name: str) -> tuple[str, ...] | None:
  """The option names of metric `name` (keyword parameters after its positional ones, except
  `RESERVED`); None where it takes any (**kwargs)."""
  params = _parameters(name)[len(catalogue.POSITIONAL[catalogue.info(name).kind]):]
  if any(p.kind == p.VAR_KEYWORD for p in params):
    return None
  return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
               and p.name not in RESERVED)


def options_with_defaults(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
  """`options` with the `BENCHMARK_DEFAULTS` that metric `name` takes and they do not set."""
  accepted = accepted_options(name)
  defaults = {k: v for k, v in BENCHMARK_DEFAULTS.items()
              if accepted is not None and k in accepted}
  return {**defaults, **options}


def check_options(name: str, options: Mapping[str, Any]) -> None:
  """Raises ValueError naming the options of `name` that its signature does not take."""
  accepted = accepted_options(name)
  if accepted is None:
    return
  bad = sorted(set(options) - set(accepted))
  if bad:
    given_by = {"key": "the benchmark derives it from (seed, run, method, batch)",
                "method_options": "config.method_options gives them",
                "compute_dtype": "config.compute_dtype gives it (for every forward)"}
    notes = "".join(f"; {b}: {given_by[b]}" for b in bad if b in given_by)
    raise ValueError(f"unknown options {bad} of {name}; its options: {', '.join(accepted)} "
                     f"({signature_text(name)}){notes}")


def metric_key(seed: int, run: str, method: str, batch: int, metric: str) -> jax.Array:
  """fold_in of crc32(metric), crc32(run), crc32(method) and the batch into key(seed)."""
  key = jax.random.key(seed)
  for text in (f"metric:{metric}", run, method):
    key = jax.random.fold_in(key, zlib.crc32(text.encode()) & 0x7FFFFFFF)
  return jax.random.fold_in(key, batch)


def call(name: str, *, clf: Any = None, images: Any = None, maps: Any = None,
         labels: Any = None, region: Any = None, method: str | None = None,
         method_options: Mapping[str, Any] | None = None, key: jax.Array | None = None,
         options: Mapping[str, Any] | None = None, mesh: Any = None) -> Any:
  """Metric `name`'s result (a NamedTuple) on one batch, by its kind (module doc).

  Args:
    name: a metric that passes `check_metric`.
    clf, images f32[B,H,W,3], maps f32[B,H,W], labels i32[B]: what the kind needs.
    region: bool[B,H,W] masks or f32[B,4] boxes (region metrics).
    method, method_options: the registered method and its options (method metrics).
    key: passed where the metric takes a `key`.
    options: its keyword options (config.metric_options.<name>).
    mesh: the devices the batch is split over (`salijax.parallel.run_sharded`).
  """
  kind = catalogue.info(name).kind
  fn = function(name)
  kwargs = dict(options or {})
  if key is not None and _has_key(name):
    kwargs["key"] = key
  if kind == catalogue.METHOD:
    method_fn = methods.get(method)

    def with_method(clf, images, labels, **kw):
      return fn(method_fn, clf, images, labels, **kw)

    return parallel.run_sharded(with_method, clf, images, labels, mesh=mesh,
                                method_options=dict(method_options or {}), **kwargs)
  if kind == catalogue.MODEL:
    return parallel.run_sharded(fn, clf, images, maps, labels, mesh=mesh, **kwargs)
  if kind == catalogue.REGION:
    return parallel.run_sharded(fn, None, maps, region, mesh=mesh, **kwargs)
  return parallel.run_sharded(fn, None, maps, mesh=mesh, **kwargs)
