"""One progress bar per stage: units done of the total, and images per second.

  with stage_progress("explain", total_images=96, enabled=True) as bar:
    ...
    bar.update(8)          # 8 more images done
"""

import contextlib
import sys
from collections.abc import Iterator

import tqdm


@contextlib.contextmanager
def stage_progress(stage: str, *, total: int, unit: str = "img",
                   enabled: bool = True) -> Iterator[tqdm.tqdm]:
  """A tqdm bar on stderr ("explain: 40/96 img [00:12, 3.3 img/s]"); silent if not enabled."""
  bar = tqdm.tqdm(total=total, desc=stage, unit=unit, disable=not enabled, file=sys.stderr,
                  dynamic_ncols=True, smoothing=0.1)
  try:
    yield bar
  finally:
    bar.close()
