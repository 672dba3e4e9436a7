"""Tests of experiments.roofline: the projection's arithmetic, FLOPs that follow the passes,
and the ImageNet-val protocol's sum."""

import math

import pytest

from experiments import roofline

H100 = roofline.ACCELERATORS["h100"]


@pytest.mark.parametrize("flops, bytes_accessed, bound", [
    (1e12, 1e6, "compute"), (1e6, 1e12, "memory")])
def test_projected_seconds_is_the_slower_of_compute_and_memory(flops, bytes_accessed, bound):
  seconds = roofline.projected_seconds(flops, bytes_accessed, H100, flops_utilisation=0.5,
                                       bandwidth_utilisation=0.25)
  compute, memory = flops / (989e12 * 0.5), bytes_accessed / (3.35e12 * 0.25)
  assert seconds == max(compute, memory)
  assert seconds == (compute if bound == "compute" else memory)


@pytest.mark.parametrize("utilisation", [0.0, 1.5, -0.1])
def test_projected_seconds_rejects_bad_utilisations(utilisation):
  with pytest.raises(ValueError, match="flops_utilisation"):
    roofline.projected_seconds(1.0, 1.0, H100, flops_utilisation=utilisation)


@pytest.fixture(scope="module")
def rows():
  """ResNet18 at 32 px: RISE with 4 and 8 masks (2 a forward), Grad-CAM, a control."""
  cheap = roofline.method_costs(["resnet18"], 32, methods=["gradcam", "fake_cam"], fill=2,
                                num_classes=10)
  rise = [roofline.method_costs(["resnet18"], 32, methods=["rise"], fill=2, num_classes=10,
                                options={"rise": {"num_masks": n, "chunk": 2}})[0]
          for n in (4, 8)]
  return {"gradcam": cheap[0], "fake_cam": cheap[1], "rise4": rise[0], "rise8": rise[1]}


@pytest.mark.slow  # the rows fixture compiles ResNet18's programs: minutes on 2 shared cores
def test_rows_project_from_their_own_numbers(rows):
  for row in rows.values():
    for key, accelerator in roofline.ACCELERATORS.items():
      compute = row["flops_per_image"] / (accelerator.peak_flops * roofline.FLOPS_UTILISATION)
      memory = row["bytes_per_image"] / (accelerator.bandwidth * roofline.BANDWIDTH_UTILISATION)
      assert row[f"{key}_sec_per_image"] == pytest.approx(max(compute, memory), rel=1e-12)
      assert row[f"{key}_bound"] == ("compute" if compute >= memory else "memory")


@pytest.mark.slow  # the rows fixture compiles ResNet18's programs: minutes on 2 shared cores
def test_flops_follow_the_passes(rows):
  rise4, rise8, gradcam = rows["rise4"], rows["rise8"], rows["gradcam"]
  assert (rise4["passes_per_image"], rise8["passes_per_image"]) == (4, 8)
  assert rise8["flops_per_image"] == pytest.approx(2 * rise4["flops_per_image"], rel=0.02)
  # XLA alone counts the loop over chunks of 2 masks once: 1 trip of 2 and 4.
  assert rise8["xla_once_flops_per_image"] == pytest.approx(rise4["xla_once_flops_per_image"],
                                                            rel=0.02)
  # RISE's forwards are its FLOPs: within 2 % of its floor (N x one forward).
  assert rise8["flops_over_floor"] == pytest.approx(1.0, abs=0.02)
  assert gradcam["batch_size"] == 2 and rise8["batch_size"] == 1  # filling_batch with fill 2
  assert gradcam["flops_per_image"] > 0 and rows["fake_cam"]["flops_over_floor"] is None


def _row(model, method, h100, tpu):
  options = roofline.PROTOCOL_OPTIONS.get(method, {})
  return {"model": model, "method": method, "h100_sec_per_image": h100,
          "tpu_v5e_sec_per_image": tpu,
          "options": ",".join(f"{k}={v}" for k, v in sorted(options.items()))}


def test_protocol_adds_four_methods_and_four_insertion_deletions():
  times = {"gradcam": 1e-4, "rise": 0.09, "sidu": 0.011, "lime": 0.025,
           "insertion_deletion": 0.01}
  rows = [_row("resnet18", m, t, 4 * t) for m, t in times.items()]
  rows.append(_row("resnet18", "occlusion", 5.0, 5.0))  # not in the protocol
  rows.append(_row("vgg11", "gradcam", 1.0, 1.0))  # incomplete: left out
  protocol = roofline.protocol_projection(rows)
  assert {r["model"] for r in protocol} == {"resnet18"}
  per_image = 1e-4 + 0.09 + 0.011 + 0.025 + 4 * 0.01
  h100 = {r["devices"]: r for r in protocol if r["accelerator"] == H100.name}
  assert h100[1]["sec_per_image"] == pytest.approx(per_image)
  assert h100[1]["hours"] == pytest.approx(50_000 * per_image / 3600)
  assert h100[8]["hours"] == pytest.approx(h100[1]["hours"] / 8)
  assert h100[1]["within_goal"] == (h100[1]["hours"] <= 2.0)
  assert h100[1]["chips_for_goal"] == math.ceil(50_000 * per_image / 7200)
  tpu = next(r for r in protocol if r["accelerator"] != H100.name and r["devices"] == 1)
  assert tpu["sec_per_image"] == pytest.approx(4 * per_image)


def test_protocol_ignores_rows_with_other_options():
  rows = [_row("resnet18", m, 0.01, 0.01)
          for m in ("gradcam", "rise", "sidu", "lime", "insertion_deletion")]
  rows[1]["options"] = "num_masks=500"
  assert roofline.protocol_projection(rows) == []


@pytest.mark.slow  # the rows fixture compiles ResNet18's programs: minutes on 2 shared cores
def test_markdown_tables_have_a_line_per_row(rows):
  table = roofline.markdown_table(list(rows.values()))
  assert len(table.splitlines()) == 2 + len(rows)
  assert "| resnet18 | rise |" in table
