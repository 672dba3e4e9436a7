"""One progress line per stage: units done of the total, their rate, time elapsed and left.

  with stage_progress("explain", total=96, enabled=True) as bar:
    bar.reset(96, initial=16)   # 16 images done by an earlier run
    ...
    bar.update(8)               # 8 more images done

writes "explain: 40/96 img (41%), 3.33 img/s, 0:07 elapsed, 0:16 left" to
stderr, redrawn in place on a terminal and a line at most every
`salijax.progress.LOG_SECONDS` in a log (`salijax.progress.Progress`).
"""

import contextlib
from collections.abc import Iterator

from salijax.progress import Progress


@contextlib.contextmanager
def stage_progress(stage: str, *, total: int, unit: str = "img",
                   enabled: bool = True) -> Iterator[Progress]:
  """The stage's Progress on stderr, its last line written on exit; silent if not enabled."""
  with Progress(stage, total=total, unit=unit, enabled=enabled) as bar:
    yield bar
