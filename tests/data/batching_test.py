"""Tests of `batches` and `num_batches` on in-memory sources."""

import threading

import numpy as np
import pytest

import salijax.data
import salijax.parallel
from salijax.data import ArraySource

SIZE = 16


def _source(num=10, size=SIZE, masks=False):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, size=(num, size, size, 3), dtype=np.uint8)
  labels = np.arange(num) % 3
  return ArraySource(
    images,
    labels,
    ["a", "b", "c"],
    masks=rng.random((num, size, size)) < 0.5 if masks else None,
  )


def _all(source, **kwargs):
  return list(salijax.data.batches(source, **kwargs))


def _assert_same_batches(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b, strict=True):
    assert x.keys() == y.keys()
    for key in x:
      np.testing.assert_array_equal(x[key], y[key])


def test_num_batches():
  source = _source(10)
  assert salijax.data.num_batches(source, 4, training=True) == 2
  assert salijax.data.num_batches(source, 4, training=False) == 3
  assert salijax.data.num_batches(source, 5, training=False) == 2
  assert salijax.data.num_batches(source, 11, training=True) == 0


def test_eval_keeps_order_and_pads_the_last_batch():
  source = _source(10)
  batches = _all(source, batch_size=4, image_size=SIZE, training=False, crop_fraction=1.0)
  assert len(batches) == 3
  np.testing.assert_array_equal(np.concatenate([b["index"] for b in batches]), [*range(10), 9, 9])
  np.testing.assert_array_equal(batches[-1]["valid"], [True, True, False, False])
  assert all(b["valid"].all() for b in batches[:2])
  last = batches[-1]
  np.testing.assert_array_equal(last["label"], [source[8]["label"], *[source[9]["label"]] * 3])
  np.testing.assert_array_equal(last["image"][2], last["image"][1])
  for batch in batches:
    assert batch["image"].shape == (4, SIZE, SIZE, 3) and batch["image"].dtype == np.float32
    assert batch["label"].dtype == np.int32 and batch["index"].dtype == np.int32
    assert batch["valid"].dtype == np.bool_
    assert "mask" not in batch


def test_eval_pass_through_is_exact():
  source = _source(5)
  batch = _all(source, batch_size=5, image_size=SIZE, training=False, crop_fraction=1.0)[0]
  for row in range(5):
    np.testing.assert_array_equal(batch["image"][row] * 255, source[row]["image"])


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic"])
def test_eval_images_are_resampled_with_the_interpolation_asked(interpolation):
  source = _source(3, size=40)
  batch = _all(source, batch_size=3, image_size=SIZE, training=False,
               interpolation=interpolation)[0]
  for row in range(3):
    expected = salijax.data.preprocessing.eval_example(source[row], SIZE, 0.875, interpolation)
    np.testing.assert_array_equal(batch["image"][row], expected["image"])
  other = "bicubic" if interpolation == "bilinear" else "bilinear"
  assert not np.array_equal(
      batch["image"][0], salijax.data.preprocessing.eval_example(source[0], SIZE, 0.875,
                                                                 other)["image"])


def test_training_epoch_is_a_permutation_without_the_last_partial_batch():
  source = _source(10)
  batches = _all(source, batch_size=4, image_size=12, training=True, seed=1, epoch=0)
  assert len(batches) == 2
  indices = np.concatenate([b["index"] for b in batches])
  assert len(set(indices.tolist())) == 8 and set(indices.tolist()) <= set(range(10))
  for batch in batches:
    assert batch["valid"].all()
    assert batch["image"].shape == (4, 12, 12, 3)
    assert 0 <= batch["image"].min() and batch["image"].max() <= 1
    np.testing.assert_array_equal(batch["label"], [source[i]["label"] for i in batch["index"]])


def test_same_seed_and_epoch_give_the_same_batches():
  source = _source(12, masks=True)
  kwargs = dict(batch_size=3, image_size=12, training=True, seed=5, epoch=2)
  _assert_same_batches(_all(source, **kwargs), _all(source, **kwargs))


def test_other_epochs_and_seeds_give_other_orders_and_crops():
  source = _source(12)
  kwargs = dict(batch_size=3, image_size=12, training=True)
  base = _all(source, seed=5, epoch=2, **kwargs)
  for other in (dict(seed=5, epoch=3), dict(seed=6, epoch=2)):
    batches = _all(source, **other, **kwargs)
    order = np.concatenate([b["index"] for b in batches])
    assert not np.array_equal(order, np.concatenate([b["index"] for b in base]))
  # The same example gets another crop in another epoch.
  first = {int(i): img for b in base for i, img in zip(b["index"], b["image"], strict=True)}
  later = _all(source, seed=5, epoch=3, **kwargs)
  for batch in later:
    for i, img in zip(batch["index"], batch["image"], strict=True):
      assert not np.array_equal(first[int(i)], img)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("start_batch", [1, 3, 4])
def test_resume_from_start_batch_yields_the_tail(training, start_batch):
  source = _source(17, masks=True)
  kwargs = dict(batch_size=4, image_size=12, training=training, seed=3, epoch=1)
  full = _all(source, **kwargs)
  assert len(full) == (4 if training else 5)
  _assert_same_batches(_all(source, start_batch=start_batch, **kwargs), full[start_batch:])


def test_prefetch_does_not_change_the_batches():
  source = _source(9)
  kwargs = dict(batch_size=2, image_size=10, training=True, seed=0, epoch=0)
  _assert_same_batches(_all(source, prefetch=0, **kwargs), _all(source, prefetch=3, **kwargs))


@pytest.mark.parametrize("training", [True, False])
def test_the_thread_pool_does_not_change_the_batches(training):
  source = _source(9, masks=True)
  kwargs = dict(batch_size=4, image_size=10, training=training, seed=0, epoch=1)
  _assert_same_batches(_all(source, workers=1, **kwargs), _all(source, workers=3, **kwargs))


def test_mask_is_transformed_with_the_image():
  # Grey images equal to their masks: crops, resizes and flips must keep them equal.
  rng = np.random.default_rng(4)
  masks = np.zeros((8, 32, 32), bool)
  for k in range(8):
    top, left = rng.integers(0, 16, size=2)
    masks[k, top : top + 16, left : left + 12] = True
  images = np.repeat(masks[..., None].astype(np.uint8) * 255, 3, axis=-1)
  source = ArraySource(images, np.zeros(8, int), ["x"], masks=masks)
  for training in (True, False):
    for batch in _all(source, batch_size=4, image_size=16, training=training, seed=2):
      assert batch["mask"].shape == (4, 16, 16) and batch["mask"].dtype == np.bool_
      grey = batch["image"][..., 0]
      # Pixels that bilinear interpolation left pure black or white agree exactly.
      pure = (grey == 0) | (grey == 1)
      np.testing.assert_array_equal(batch["mask"][pure], grey[pure] == 1)
      assert (batch["mask"] == (grey > 0.5)).mean() > 0.97


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("count", [2, 3, 4])
def test_process_shares_are_the_blocks_of_each_batch(training, count):
  """Each process reads its contiguous block of every batch; the blocks put side by side are
  the whole batch (the eval padding included, even a block of padding only)."""
  source = _source(10, masks=True)
  kwargs = dict(batch_size=4, image_size=SIZE, training=training, seed=3, epoch=1,
                crop_fraction=1.0)
  whole = _all(source, **kwargs)
  shares = [_all(source, share=(i, count), **kwargs) for i in range(count)]
  for k, batch in enumerate(whole):
    blocks = [share[k] for share in shares]
    assert [len(b["valid"]) for b in blocks] == [len(salijax.parallel.process_share(
        4, index=i, count=count)) for i in range(count)]
    for key in batch:
      joined = np.concatenate([b[key] for b in blocks])
      valid = batch["valid"]
      np.testing.assert_array_equal(joined[valid], batch[key][valid])  # the same rows
      if key in ("index", "valid"):
        np.testing.assert_array_equal(joined, batch[key])


def test_the_background_thread_ends_when_iteration_stops():
  source = _source(20)
  iterator = salijax.data.batches(source, batch_size=2, image_size=8, training=True)
  next(iterator)
  iterator.close()
  assert not [t for t in threading.enumerate() if t.name.startswith("salijax-batches")]


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=11), "batch_size: expected at most the 10 examples"),
    (dict(image_size=0), "image_size"),
    (dict(start_batch=3), r"start_batch: expected an int in \[0, 2\]"),
    (dict(start_batch=-1), "start_batch"),
    (dict(crop_scale=(0.5, 0.2)), "crop_scale"),
    (dict(crop_fraction=0.0), "crop_fraction"),
    (dict(seed=-1), "seed"),
    (dict(workers=0), "workers"),
    (dict(interpolation="nearest"), "interpolation: expected one of"),
    (dict(share=(2, 2)), r"share: expected \(index, count\) with 0 <= index < count"),
    (dict(share=(0, 5)), "count <= batch_size=4"),
  ],
)
def test_bad_arguments(kwargs, match):
  arguments = {"batch_size": 4, "image_size": 8, "training": True, **kwargs}
  with pytest.raises(ValueError, match=match):
    next(salijax.data.batches(_source(10), **arguments))


def test_array_source_validates_its_arrays():
  images = np.zeros((2, 4, 4, 3), np.uint8)
  with pytest.raises(ValueError, match="images"):
    ArraySource(images.astype(np.float32), np.zeros(2, int), ["a"])
  with pytest.raises(ValueError, match="labels"):
    ArraySource(images, np.array([0, 1]), ["a"])
  with pytest.raises(ValueError, match="masks"):
    ArraySource(images, np.zeros(2, int), ["a"], masks=np.zeros((2, 4, 5), bool))
