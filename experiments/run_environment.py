"""Where and when a benchmark ran: the device, its count, jax and jaxlib, the host CPU, the
date (UTC), as a dict for a report's JSON."""

import datetime
import pathlib
import platform

import jax
import jaxlib


def host_cpu() -> str:
  """The CPU's model name (Linux's /proc/cpuinfo), else what `platform` knows."""
  cpuinfo = pathlib.Path("/proc/cpuinfo")
  if cpuinfo.exists():
    for line in cpuinfo.read_text().splitlines():
      if line.startswith("model name"):
        return line.partition(":")[2].strip()
  return platform.processor() or platform.machine()


def run_environment() -> dict:
  """{device_kind, device_count, platform, jax, jaxlib, host_cpu, date}."""
  devices = jax.devices()
  return {"device_kind": devices[0].device_kind, "device_count": len(devices),
          "platform": devices[0].platform, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
          "host_cpu": host_cpu(),
          "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
