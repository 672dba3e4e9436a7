"""Tests of salijax.progress: the line's counts, rates and times, and how often it is written."""

import io

import pytest

from salijax import progress
from salijax.progress import Progress


class Clock:
  """A fake clock: the time is what the test sets."""

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class Terminal(io.StringIO):
  def isatty(self):
    return True


def test_a_log_gets_a_line_per_interval_then_the_final_one():
  clock, stream = Clock(), io.StringIO()
  bar = Progress("explain", total=96, unit="img", stream=stream, clock=clock)
  for _ in range(12):  # 8 images a second; the line of second LOG_SECONDS is written
    clock.now += 1
    bar.update(8)
  assert progress.LOG_SECONDS < 12
  written = int(progress.LOG_SECONDS)
  done = 8 * written
  expected_first = (f"explain: {done}/96 img ({100 * done // 96}%), 8 img/s,"
                    f" 0:{written:02d} elapsed, 0:{(96 - done) // 8:02d} left")
  assert stream.getvalue() == expected_first + "\n"
  clock.now += 5  # the final line's rate and times are those of the last update
  bar.close()
  assert stream.getvalue().splitlines() == [expected_first,
                                           "explain: 96/96 img (100%), 8 img/s, 0:12 elapsed"]
  bar.close()  # nothing new: nothing written
  assert len(stream.getvalue().splitlines()) == 2


def test_many_updates_leave_few_lines():
  clock, stream = Clock(), io.StringIO()
  with Progress("evaluate", total=100_000, stream=stream, clock=clock) as bar:
    for _ in range(100_000):
      clock.now += 0.001
      bar.update()
  lines = stream.getvalue().splitlines()
  assert len(lines) <= 100 / progress.LOG_SECONDS + 1
  assert lines[-1] == "evaluate: 100000/100000 img (100%), 1000 img/s, 1:40 elapsed"


def test_reset_finishes_a_count_and_the_rate_counts_only_this_run_s_units():
  clock, stream = Clock(), io.StringIO()
  bar = Progress("train", unit="step", per_unit=("img", 16), stream=stream, clock=clock)
  bar.reset(10, desc="epoch 1/2", initial=4)  # 4 steps done before a restart
  for _ in range(6):
    clock.now += 0.25
    bar.update()
  bar.set_postfix(loss="0.512", acc="0.910")
  bar.reset(10, desc="epoch 2/2")
  clock.now += 2
  bar.update(5)
  bar.close()
  assert stream.getvalue().splitlines() == [
      "epoch 1/2: 10/10 step (100%), 4 step/s, 64 img/s, 0:02 elapsed | loss=0.512 acc=0.910",
      "epoch 2/2: 5/10 step (50%), 2.5 step/s, 40 img/s, 0:02 elapsed, 0:02 left"
      " | loss=0.512 acc=0.910"]


def test_a_terminal_line_is_redrawn_in_place_at_most_every_interval():
  clock, stream = Clock(), Terminal()
  with Progress("explain", total=50, stream=stream, clock=clock) as bar:
    for _ in range(50):
      clock.now += 0.1
      bar.update()
  text = stream.getvalue()
  assert text.endswith("\rexplain: 50/50 img (100%), 10 img/s, 0:05 elapsed\x1b[K\n")
  assert text.count("\n") == 1
  assert 1 < text.count("\r") <= 5 / progress.TTY_SECONDS + 1
  assert "\rexplain: 30/50 img (60%), 10 img/s, 0:03 elapsed, 0:02 left\x1b[K" in text


def test_an_inner_count_on_a_terminal_keeps_the_outer_line():
  clock, stream = Clock(), Terminal()
  outer = Progress("train", total=2, unit="run", stream=stream, clock=clock)
  clock.now += 60
  outer.update()  # train: 1/2 run, drawn and left open
  with Progress("epoch 1/1", total=1, unit="step", stream=stream, clock=clock) as inner:
    clock.now += 1
    inner.update()
  clock.now += 1
  outer.update()
  outer.close()
  assert stream.getvalue().replace("\x1b[K", "").split("\n") == [
      "\rtrain: 1/2 run (50%), 0.0167 run/s, 1:00 elapsed, 1:00 left",
      "\repoch 1/1: 1/1 step (100%), 1 step/s, 0:01 elapsed",
      "\rtrain: 2/2 run (100%), 0.0323 run/s, 1:02 elapsed", ""]


def test_disabled_writes_nothing():
  clock, stream = Clock(), Terminal()
  with Progress("explain", total=4, enabled=False, stream=stream, clock=clock) as bar:
    clock.now += 20
    bar.update(4)
  assert stream.getvalue() == ""


def test_no_total_counts_without_percent_and_an_empty_count_writes_nothing():
  clock, stream = Clock(), io.StringIO()
  with Progress("predict", stream=stream, clock=clock) as bar:
    bar.reset(0)
  assert stream.getvalue() == ""
  with Progress("predict", stream=stream, clock=clock) as bar:
    clock.now += 3
    bar.update(6)
  assert stream.getvalue() == "predict: 6 img, 2 img/s, 0:03 elapsed\n"


@pytest.mark.parametrize(("seconds", "text"), [(7.4, "0:07"), (725, "12:05"),
                                               (3 * 3600 + 129, "3:02:09")])
def test_durations(seconds, text):
  assert progress.duration_text(seconds) == text
