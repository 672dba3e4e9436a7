"""Field checks shared by the config validators (training, benchmark)."""

from collections.abc import Sequence
from typing import Any

import ml_collections


def expect(ok: bool, field: str, expected: str, value: Any) -> None:
  """Raises ValueError "config.<field>: expected <expected>, got <value>" unless `ok`."""
  if not ok:
    raise ValueError(f"config.{field}: expected {expected}, got {value!r}")


def is_int(value: Any, minimum: int) -> bool:
  """Whether `value` is an int (not a bool) >= `minimum`."""
  return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def check_fields(config: ml_collections.ConfigDict, fields: Sequence[str],
                 config_file: str) -> None:
  """Raises ValueError naming the missing and unknown top-level fields, if any.

  Args:
    config: the config to check.
    fields: every field it must have, and no others.
    config_file: the config file whose get_config() users should start from.
  """
  missing = [f for f in fields if f not in config]
  if missing:
    raise ValueError(f"config: missing fields {missing}; start from the get_config() "
                     f"of {config_file}")
  unknown = [f for f in config if f not in fields]
  if unknown:
    raise ValueError(f"config: unknown fields {unknown}; the fields are {tuple(fields)}")
