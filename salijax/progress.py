"""Progress lines for long jobs: count of total, percent, rate, time elapsed and left.

    with Progress("explain", total=96, unit="img") as bar:
      for batch in batches:
        ...
        bar.update(8)                      # 8 more images done

  explain: 40/96 img (42%), 3.33 img/s, 0:12 elapsed, 0:17 left

`per_unit=("img", 16)` adds a second rate (a step of 16 images: "11.2 step/s,
179 img/s"); `set_postfix(loss="0.512")` appends "| loss=0.512"; `reset`
finishes the line of one count and starts the next (an epoch's steps:
"epoch 2/6: 47/94 step (50%), ..."), `initial` counting what was done before
(a resumed job; the rates count only what this process did).

On a terminal (the stream's `isatty()`) the line is redrawn in place at most
every TTY_SECONDS; elsewhere (a log file, CI) a whole line is written at most
every LOG_SECONDS, so a long job leaves a few lines, not one per update. The
last line of each count is always written (by `reset` or `close`). On a
terminal a line another Progress left unfinished on the same stream (an
outer loop's) is ended first, so nested counts each keep their lines.
"""

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

TTY_SECONDS = 0.5
LOG_SECONDS = 10.0
_CLEAR_TO_END = "\x1b[K"

_unfinished: dict[int, "Progress"] = {}  # id(stream) -> the Progress whose line is open on it


def duration_text(seconds: float) -> str:
  """"0:07", "12:05" or "3:02:09" (hours:minutes:seconds)."""
  minutes, secs = divmod(int(round(seconds)), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def rate_text(rate: float) -> str:
  """A rate with 3 significant digits, without an exponent ("0.25", "3.33", "179")."""
  return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


class Progress:
  """One progress line (module doc); silent when not enabled."""

  def __init__(self, desc: str, *, total: int = 0, unit: str = "img", initial: int = 0,
               per_unit: tuple[str, float] | None = None, enabled: bool = True,
               stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
    """A count of `total` `unit`s, `initial` of them done before; written to `stream`
    (sys.stderr when None) with times from `clock` (seconds)."""
    self.unit = unit
    self.per_unit = per_unit
    self.enabled = enabled
    self._stream = sys.stderr if stream is None else stream
    self._clock = clock
    self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
    self._postfix: dict[str, Any] = {}
    self.desc = desc
    self._begin(total, initial)

  def _begin(self, total: int, initial: int) -> None:
    """Starts a count of `total`, `initial` of them done."""
    self.total, self.count, self._initial = int(total), int(initial), int(initial)
    self._start = self._last_update = self._last_write = self._clock()
    self._written: int | None = None  # the count of the last line written

  def reset(self, total: int, *, desc: str | None = None, initial: int = 0) -> None:
    """Finishes the current count's line and starts a count of `total` (`initial` done before),
    named `desc` (None: the same name)."""
    self._finish()
    if desc is not None:
      self.desc = desc
    self._begin(total, initial)

  def update(self, n: int = 1) -> None:
    """Counts `n` more units done; writes the line when its interval has passed."""
    self.count += n
    self._last_update = self._clock()
    if self._last_update - self._last_write >= (TTY_SECONDS if self._tty else LOG_SECONDS):
      self._write(final=False)

  def set_postfix(self, **values: Any) -> None:
    """Values shown after the rates ("| loss=0.512 acc=0.91"), until replaced."""
    self._postfix = values

  def close(self) -> None:
    """Writes the final line of the current count."""
    self._finish()

  def __enter__(self) -> "Progress":
    return self

  def __exit__(self, *exc_info: Any) -> None:
    self.close()

  def line(self) -> str:
    """The current line's text (module doc); rates and times as of the last update."""
    parts = [f"{self.count}/{self.total} {self.unit}" if self.total else
             f"{self.count} {self.unit}"]
    if self.total:
      parts[0] += f" ({100 * self.count // self.total}%)"
    elapsed = self._last_update - self._start
    done = self.count - self._initial
    if done > 0 and elapsed > 0:
      rate = done / elapsed
      parts.append(f"{rate_text(rate)} {self.unit}/s")
      if self.per_unit is not None:
        name, size = self.per_unit
        parts.append(f"{rate_text(rate * size)} {name}/s")
      parts.append(f"{duration_text(elapsed)} elapsed")
      if self.total > self.count:
        parts.append(f"{duration_text((self.total - self.count) / rate)} left")
    text = f"{self.desc}: " + ", ".join(parts)
    if self._postfix:
      text += " | " + " ".join(f"{key}={value}" for key, value in self._postfix.items())
    return text

  def _finish(self) -> None:
    """Writes the final line unless it was written already (then ends it on a terminal) or
    nothing was counted."""
    if self._written != self.count and (self.count or self.total):
      self._write(final=True)
    elif _unfinished.get(id(self._stream)) is self:
      del _unfinished[id(self._stream)]
      self._stream.write("\n")
      self._stream.flush()

  def _write(self, *, final: bool) -> None:
    self._last_write = self._clock()
    self._written = self.count
    if not self.enabled:
      return
    if not self._tty:
      self._stream.write(self.line() + "\n")
    else:
      key = id(self._stream)
      other = _unfinished.get(key)
      if other is not None and other is not self:
        self._stream.write("\n")  # keep the outer count's line
      self._stream.write("\r" + self.line() + _CLEAR_TO_END + ("\n" if final else ""))
      if final:
        _unfinished.pop(key, None)
      else:
        _unfinished[key] = self
    self._stream.flush()
