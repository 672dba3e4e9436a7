"""Quieter logs for the binaries: orbax writes dozens of INFO lines per checkpoint."""

import logging as std_logging
import os

from absl import logging


class _DropOrbaxInfo(std_logging.Filter):
  """Drops orbax's INFO records; its warnings pass."""

  def filter(self, record: std_logging.LogRecord) -> bool:
    return (record.levelno >= std_logging.WARNING
            or f"{os.sep}orbax{os.sep}" not in record.pathname)


def drop_orbax_info() -> None:
  """Filters orbax's INFO records out of the absl log handler."""
  logging.get_absl_handler().addFilter(_DropOrbaxInfo())
