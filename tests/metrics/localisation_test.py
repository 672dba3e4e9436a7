"""Tests of salijax.metrics.localisation: slow numpy references, known answers, Quantus 0.6.0."""

import warnings

import jax
import numpy as np
import pytest
from float_tolerance import EPS, sum_atol, sum_rtol

from salijax import metrics

B, H, W = 6, 12, 10
N = H * W
K_TOP = 20
FIELDS = metrics.Localisation._fields


def random_inputs(seed: int, ties: bool = False):
  """Maps f32[B,H,W] of either sign (mostly positive sums) and masks bool[B,H,W], none empty."""
  rng = np.random.default_rng(seed)
  if ties:  # few distinct values: many ties at every rank
    maps = (rng.integers(0, 5, (B, H, W)) / 4.0 - 0.25).astype(np.float32)
  else:
    maps = rng.normal(0.3, 1.0, (B, H, W)).astype(np.float32)
  masks = rng.random((B, H, W)) < np.linspace(0.1, 0.6, B)[:, None, None]
  masks[:, 0, 0] = True  # at least one pixel
  masks[-1] = False
  masks[-1, 3:7, 2:9] = True  # a box
  return maps, masks


def reference_top(values, mask, count, ties):
  """Hits of the `count` highest values in mask: stable argsort, or the expectation over
  random orders of ties (each pixel's probability of being among the `count` highest)."""
  if ties == "first":
    return float(mask[np.argsort(-values, kind="stable")[:count]].sum())
  threshold = np.sort(values)[::-1][count - 1]
  above, tied = values > threshold, values == threshold
  chance = above + tied * (count - above.sum()) / tied.sum()
  return float((chance * mask).sum())


def reference(maps, masks, *, k=K_TOP, ties="expected", attribution="abs", weighted=False,
              concept_influence=False, absolute=False):
  """The module doc's definitions, one image at a time in float64."""
  out = {name: [] for name in FIELDS}
  flat_maps = maps.reshape(len(maps), -1).astype(np.float64)
  for a, s in zip(flat_maps, masks.reshape(len(masks), -1), strict=True):
    v = np.abs(a) if absolute else a
    size = int(s.sum())
    out["relevance_rank_accuracy"].append(reference_top(v, s, size, ties) / size)
    out["relevance_mass_accuracy"].append(v[s].sum() / v.sum())
    plus = np.abs(a) if attribution == "abs" else np.maximum(a, 0.0)
    located = plus[s].sum() / (plus.sum() + 1e-9)
    out["attribution_localisation"].append(located * size / a.size if weighted else located)
    top = reference_top(v, s, k, ties) / k
    out["top_k_intersection"].append(top * a.size / size if concept_influence else top)
    pos, neg = v[s][:, None], v[~s][None, :]
    out["auc"].append(np.mean((pos > neg) + 0.5 * (pos == neg)) if neg.size else np.nan)
  return {name: np.array(values) for name, values in out.items()}


def tolerances(maps, masks, absolute=False):
  """Per-field absolute tolerances of float32 results against exact values (float_tolerance)."""
  flat = maps.reshape(len(maps), -1).astype(np.float64)
  values = np.abs(flat) if absolute else flat
  total = np.abs(values.sum(axis=1))
  mass = np.abs((values * masks.reshape(len(masks), -1)).sum(axis=1)) / total
  # in / total: each sum off by sum_atol of its terms, then one rounding of the quotient.
  term_error = np.array([sum_atol(np.abs(row).sum(), N) for row in values])
  mass_atol = (term_error * (1.0 + mass)) / total + 2 * EPS * mass
  few = sum_rtol(8)  # counts are exact; a handful of roundings of quotients and products
  largest_top_k = N / masks.sum(axis=(1, 2))  # with concept_influence; at most 1 without
  # Ratios of sums of one sign, each sum within sum_rtol(N), values at most 1.
  ratio = sum_rtol(2 * N + 4)
  return {"relevance_rank_accuracy": few, "relevance_mass_accuracy": mass_atol,
          "attribution_localisation": ratio, "top_k_intersection": few * largest_top_k,
          "auc": ratio}


def assert_within(got, want, atol, name):
  """|got - want| <= atol elementwise (atol a scalar or one per image); NaN where want is NaN."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  assert got.shape == want.shape, (name, got.shape, want.shape)
  np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=name)
  error = np.where(np.isnan(want), 0.0, np.abs(got - want))
  bound = np.broadcast_to(atol, error.shape)
  assert (error <= bound).all(), (name, got, want, error / bound)


def assert_fields_close(got, want, atol):
  for name in FIELDS:
    value = np.asarray(getattr(got, name))
    assert value.dtype == np.float32 and value.shape == (B,), name
    assert_within(value, want[name], atol[name], name)


@pytest.mark.parametrize("ties_in_maps", [False, True])
@pytest.mark.parametrize("ties", ["expected", "first"])
def test_fields_equal_the_numpy_reference(ties_in_maps, ties):
  maps, masks = random_inputs(1, ties=ties_in_maps)
  got = metrics.localisation(maps, masks, k=K_TOP, ties=ties)
  assert_fields_close(got, reference(maps, masks, ties=ties), tolerances(maps, masks))


@pytest.mark.parametrize("options", [
    {"attribution": "positive", "weighted": True},
    {"concept_influence": True, "absolute": True, "k": 7},
])
def test_options_equal_the_numpy_reference(options):
  maps, masks = random_inputs(2, ties=True)
  got = metrics.localisation(maps, masks, **{"k": K_TOP, **options})
  want = reference(maps, masks, **{"k": K_TOP, **options})
  assert_fields_close(got, want, tolerances(maps, masks, options.get("absolute", False)))


def test_a_map_equal_to_the_mask_scores_one_and_its_complement_zero():
  _, masks = random_inputs(3)
  perfect = metrics.localisation(masks.astype(np.float32), masks, k=1)
  worst = metrics.localisation((~masks).astype(np.float32), masks, k=1)
  for name in FIELDS:
    np.testing.assert_array_equal(getattr(perfect, name), 1.0, err_msg=name)
    np.testing.assert_array_equal(getattr(worst, name), 0.0, err_msg=name)


@pytest.mark.parametrize(("size", "default_k"), [(24, 24 * 24), (40, 1000)])
def test_the_default_k_is_1000_or_every_pixel_of_a_smaller_image(size, default_k):
  rng = np.random.default_rng(size)
  maps = rng.normal(size=(2, size, size)).astype(np.float32)
  masks = rng.uniform(size=(2, size, size)) < 0.3
  default = metrics.localisation(maps, masks)
  explicit = metrics.localisation(maps, masks, k=default_k)
  for name in FIELDS:
    np.testing.assert_array_equal(getattr(default, name), getattr(explicit, name), err_msg=name)
  with pytest.raises(ValueError, match="k must be an integer"):
    metrics.localisation(maps, masks, k=size * size + 1)


def test_ties_known_answer():
  """Three pixels tied at the top, one of them in the region, K = 1."""
  maps = np.array([[[1.0, 1.0], [1.0, 0.0]]], np.float32)
  masks = np.array([[[True, False], [False, False]]])
  expected = metrics.localisation(maps, masks, k=1)
  np.testing.assert_allclose(expected.relevance_rank_accuracy, [1 / 3], rtol=sum_rtol(2))
  np.testing.assert_allclose(expected.top_k_intersection, [1 / 3], rtol=sum_rtol(2))
  np.testing.assert_allclose(expected.auc, [2 / 3], rtol=sum_rtol(4))  # beats 1, ties 2 of 3
  first = metrics.localisation(maps, masks, k=1, ties="first")  # (0, 0) comes first
  np.testing.assert_array_equal(first.relevance_rank_accuracy, [1.0])
  whole = metrics.localisation(maps, np.ones_like(masks), k=1)
  assert np.isnan(whole.auc).all()  # no pixel outside: no ROC curve


def test_jit_and_batch_invariance():
  maps, masks = random_inputs(4)
  whole = metrics.localisation(maps, masks, k=K_TOP)
  jitted = jax.jit(lambda m, s: metrics.localisation(m, s, k=K_TOP))(maps, masks)
  atol = tolerances(maps, masks)
  doubled = {name: 2 * np.asarray(value) for name, value in atol.items()}
  for name in FIELDS:
    assert_within(getattr(jitted, name), getattr(whole, name), doubled[name], name)
  for i in range(B):
    one = metrics.localisation(maps[i:i + 1], masks[i:i + 1], k=K_TOP)
    for name in FIELDS:
      bound = np.broadcast_to(doubled[name], (B,))[i]
      assert_within(getattr(one, name), getattr(whole, name)[i:i + 1], bound, name)


def test_bad_input():
  maps, masks = random_inputs(5)
  empty = masks.copy()
  empty[1] = False
  with pytest.raises(ValueError, match=r"empty regions at batch indices \[1\]"):
    metrics.localisation(maps, empty, k=K_TOP)
  with pytest.raises(ValueError, match="k must be an integer"):
    metrics.localisation(maps, masks, k=N + 1)
  with pytest.raises(ValueError, match="ties must be one of"):
    metrics.localisation(maps, masks, k=K_TOP, ties="random")
  with pytest.raises(ValueError, match="attribution must be one of"):
    metrics.localisation(maps, masks, k=K_TOP, attribution="raw")
  with pytest.raises(TypeError, match="weighted must be a bool"):
    metrics.localisation(maps, masks, k=K_TOP, weighted=1)


def run_quantus(metric, maps, masks):
  """A Quantus metric on a_batch, s_batch in its layout (N,1,H,W); no model is needed."""
  x_batch = np.zeros((len(maps), 3, H, W), np.float32)  # only its shape is read
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return np.asarray(metric(model=None, x_batch=x_batch, y_batch=np.zeros(len(maps), int),
                             a_batch=maps[:, None], s_batch=masks[:, None].astype(np.float32),
                             batch_size=len(maps)), np.float64)


@pytest.mark.parametrize("ties", ["expected", "first"])
def test_equal_to_quantus(quantus, ties):
  """On maps without ties both tie rules are Quantus's; weighted differs by design."""
  maps, masks = random_inputs(6)
  atol = {name: 2 * np.asarray(value) for name, value in tolerances(maps, masks).items()}
  plain = {"normalise": False, "disable_warnings": True}
  got = metrics.localisation(maps, masks, k=K_TOP, ties=ties)
  want = {
      "relevance_rank_accuracy": run_quantus(quantus.RelevanceRankAccuracy(**plain), maps, masks),
      "relevance_mass_accuracy": run_quantus(quantus.RelevanceMassAccuracy(**plain), maps, masks),
      "attribution_localisation": run_quantus(quantus.AttributionLocalisation(**plain), maps,
                                              masks),
      "top_k_intersection": run_quantus(quantus.TopKIntersection(k=K_TOP, **plain), maps, masks),
      "auc": run_quantus(quantus.AUC(**plain), maps, masks),
  }
  for name, value in want.items():
    assert_within(getattr(got, name), value, atol[name], name)

  options = metrics.localisation(maps, masks, k=7, ties=ties, attribution="positive",
                                 weighted=True, concept_influence=True, absolute=True)
  positive = run_quantus(quantus.AttributionLocalisation(
      abs=False, positive_attributions=True, weighted=True, **plain), maps, masks)
  # Quantus weights by |s| / x_batch[2:].size, the (B - 2) C H W values of all but the
  # batch's first two images (docs/metrics.md#localisation); salijax by |s| / (H W).
  quantus_weight_scale = N / ((B - 2) * 3 * N)
  np.testing.assert_allclose(np.asarray(options.attribution_localisation) * quantus_weight_scale,
                             positive, rtol=2 * sum_rtol(2 * N + 4))
  absolute = {"normalise": False, "abs": True, "disable_warnings": True}
  abs_atol = {name: 2 * np.asarray(value)
              for name, value in tolerances(maps, masks, absolute=True).items()}
  top = run_quantus(quantus.TopKIntersection(k=7, concept_influence=True, **absolute), maps,
                    masks)
  np.testing.assert_allclose(options.top_k_intersection, top, rtol=2 * sum_rtol(8), atol=0)
  for name, metric in (("relevance_rank_accuracy", quantus.RelevanceRankAccuracy),
                       ("relevance_mass_accuracy", quantus.RelevanceMassAccuracy),
                       ("auc", quantus.AUC)):
    assert_within(getattr(options, name), run_quantus(metric(**absolute), maps, masks),
                  abs_atol[name], name)
