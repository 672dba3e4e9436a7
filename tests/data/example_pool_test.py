"""Tests of `example_pool.map_examples`: the serial result, in order, from several threads."""

import threading

import pytest

from salijax.data import example_pool


def test_the_pool_gives_the_serial_result_in_order_from_several_threads():
  barrier = threading.Barrier(3, timeout=30)

  def fn(i):
    if i < 3:
      barrier.wait()  # returns only once three calls run at the same time
    return i * i, threading.current_thread().name

  rows = example_pool.map_examples(fn, range(10), workers=3)
  assert [value for value, _ in rows] == [i * i for i in range(10)]
  assert len({name for name, _ in rows[:3]}) == 3


def test_one_worker_runs_in_the_calling_thread():
  rows = example_pool.map_examples(lambda i: threading.current_thread(), range(4), workers=1)
  assert rows == [threading.current_thread()] * 4


def test_an_exception_of_fn_is_raised():
  def fn(i):
    if i == 5:
      raise KeyError(i)
    return i

  with pytest.raises(KeyError):
    example_pool.map_examples(fn, range(8), workers=2)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_workers(workers):
  with pytest.raises(ValueError, match="workers"):
    example_pool.map_examples(lambda i: i, range(3), workers=workers)
