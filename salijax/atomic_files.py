"""Files written atomically: a temporary file next to the target, then a rename.

A reader (or a resumed run) sees either the old file or the complete new one,
never a partial write.
"""

import json
import os
import pathlib
import secrets
from typing import Any


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
  """Writes `data` to a temporary file next to `path`, then renames it over `path`.

  The temporary file is created with the usual permissions (umask), unlike
  `tempfile.mkstemp`'s owner-only 0600, so results stay readable by others.
  """
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
  try:
    with open(tmp, "xb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    tmp.unlink(missing_ok=True)
    raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
  """`write_bytes_atomic` of `text` in UTF-8."""
  write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, value: Any) -> None:
  write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
