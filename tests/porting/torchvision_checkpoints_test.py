"""Tests of the torchvision checkpoint download cache and of `load_weights`.

Files are served by an HTTP server on 127.0.0.1 in a thread, or from file://
URLs; the manifest is replaced by a fake one. Nothing reaches the internet.
"""

import hashlib
import http.server
import importlib
import importlib.resources
import json
import pathlib
import re
import socket
import threading

import jax
import numpy as np
import pytest

from salijax.porting import torchvision_checkpoints as pretrained_module
from salijax.porting.pth_reader import read_pth
from salijax.porting.torchvision_checkpoints import load_weights, pretrained
from salijax.porting.torchvision_to_flax import torchvision_to_flax

CHECKPOINT = pathlib.Path(__file__).parent / "testdata" / "tiny_state_dict.pth"


def sha256(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()


class Server:
  """Serves `files` {name: bytes} at `url`; `requests` lists the paths asked for."""

  def __init__(self):
    self.files: dict[str, bytes] = {}
    self.requests: list[str] = []
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      def do_GET(self):
        server.requests.append(self.path)
        data = server.files.get(self.path.rsplit("/", 1)[1])
        if data is None:
          self.send_error(404)
          return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def log_message(self, *args):
        pass

    self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self._httpd.server_port}/models"
    self._thread = threading.Thread(
      target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    self._thread.start()

  def close(self):
    self._httpd.shutdown()
    self._httpd.server_close()


@pytest.fixture
def server():
  server = Server()
  yield server
  server.close()


@pytest.fixture
def fake_manifest(monkeypatch):
  """Replaces the manifest; returns its {arch: {weights: entry}} to fill in."""
  checkpoints = {}
  monkeypatch.setattr(
    pretrained_module, "manifest", lambda: {"checkpoints": checkpoints}
  )
  monkeypatch.delenv(pretrained_module.URL_BASE_ENV, raising=False)
  return checkpoints


def add_checkpoint(
  checkpoints, arch: str, data: bytes, *, prefix_only=False, sha256_prefix_digits=8
) -> str:
  """Adds `arch` holding `data` to the fake manifest; returns its file name."""
  digest = sha256(data)
  file_name = f"{arch}-{digest[:8]}.pth"
  checkpoints[arch] = {
    "IMAGENET1K_V1": {
      "url": f"https://download.invalid/models/{file_name}",
      "sha256": digest[:sha256_prefix_digits] if prefix_only else digest,
    }
  }
  return file_name


def files_in(folder: pathlib.Path) -> list[str]:
  return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_downloads_once_then_reuses_the_cache(tmp_path, server, fake_manifest):
  data = b"checkpoint bytes" * 1000
  file_name = add_checkpoint(fake_manifest, "net", data)
  server.files[file_name] = data
  cache = tmp_path / "cache"
  path = pretrained("net", cache_dir=cache, url_base=server.url)
  assert path == cache / file_name
  assert path.read_bytes() == data
  assert server.requests == [f"/models/{file_name}"]
  assert files_in(cache) == [file_name]  # No temporary file, no sidecar.
  assert pretrained("net", cache_dir=cache, url_base=server.url) == path
  assert len(server.requests) == 1


def test_url_base_from_the_environment_and_file_urls(
  tmp_path, monkeypatch, fake_manifest
):
  data = b"weights"
  file_name = add_checkpoint(fake_manifest, "net", data)
  mirror = tmp_path / "mirror"
  mirror.mkdir()
  (mirror / file_name).write_bytes(data)
  monkeypatch.setenv(pretrained_module.URL_BASE_ENV, mirror.as_uri())
  path = pretrained("net", cache_dir=tmp_path / "cache")
  assert path.read_bytes() == data


def test_wrong_hash_is_an_error_and_nothing_is_cached(tmp_path, server, fake_manifest):
  file_name = add_checkpoint(fake_manifest, "net", b"the published file")
  server.files[file_name] = b"something else"
  cache = tmp_path / "cache"
  with pytest.raises(ValueError) as info:
    pretrained("net", cache_dir=cache, url_base=server.url)
  message = str(info.value)
  assert file_name in message
  assert sha256(b"the published file") in message
  assert sha256(b"something else") in message
  assert files_in(cache) == []


def closed_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.parametrize("failure", ["connection refused", "404"])
def test_download_failure_says_where_to_put_the_file(
  tmp_path, server, fake_manifest, failure
):
  file_name = add_checkpoint(fake_manifest, "net", b"weights")
  url_base = f"http://127.0.0.1:{closed_port()}/x" if failure != "404" else server.url
  cache = tmp_path / "cache"
  with pytest.raises(OSError) as info:
    pretrained("net", cache_dir=cache, url_base=url_base)
  assert str(cache / file_name) in str(info.value)
  assert f"{url_base}/{file_name}" in str(info.value)
  assert f"https://download.invalid/models/{file_name}" in str(info.value)
  assert files_in(cache) == []


def test_prefix_only_hash_records_then_enforces_the_full_hash(
  tmp_path, server, fake_manifest
):
  # A 1-digit prefix lets two different files share it: only the sidecar
  # tells them apart, as it must for the 8-digit prefixes of real file names.
  first = b"weights v0"
  second = next(
    d
    for d in (b"weights v%d" % i for i in range(1, 100))
    if sha256(d)[0] == sha256(first)[0]
  )
  file_name = add_checkpoint(
    fake_manifest, "net", first, prefix_only=True, sha256_prefix_digits=1
  )
  server.files[file_name] = first
  cache = tmp_path / "cache"
  path = pretrained("net", cache_dir=cache, url_base=server.url)
  sidecar = cache / f"{file_name}.sha256"
  assert sidecar.read_text().strip() == sha256(first)
  assert pretrained("net", cache_dir=cache, url_base=server.url) == path
  assert len(server.requests) == 1

  path.write_bytes(second)  # Tampered, but its hash still has the prefix.
  with pytest.raises(ValueError, match=re.escape(sha256(second))) as info:
    pretrained("net", cache_dir=cache, url_base=server.url)
  assert sha256(first) in str(info.value)
  assert str(path) in str(info.value)

  path.unlink()  # A fresh download must match the recorded hash too.
  server.files[file_name] = second
  with pytest.raises(ValueError, match=re.escape(sha256(first))):
    pretrained("net", cache_dir=cache, url_base=server.url)
  assert not path.exists()


def test_malformed_sidecar_is_reported(tmp_path, server, fake_manifest):
  data = b"weights"
  file_name = add_checkpoint(fake_manifest, "net", data, prefix_only=True)
  server.files[file_name] = data
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / f"{file_name}.sha256").write_text("not a hash\n")
  with pytest.raises(ValueError, match=re.escape(f"{file_name}.sha256")):
    pretrained("net", cache_dir=cache, url_base=server.url)
  assert server.requests == []


def test_file_placed_by_hand_is_used_without_download(tmp_path, server, fake_manifest):
  data = b"weights fetched by hand"
  file_name = add_checkpoint(fake_manifest, "net", data, prefix_only=True)
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / file_name).write_bytes(data)
  assert pretrained("net", cache_dir=cache, url_base=server.url) == cache / file_name
  assert server.requests == []
  assert (cache / f"{file_name}.sha256").read_text().strip() == sha256(data)


def test_wrong_file_in_the_cache_is_reported_not_replaced(
  tmp_path, server, fake_manifest
):
  file_name = add_checkpoint(fake_manifest, "net", b"published")
  cache = tmp_path / "cache"
  cache.mkdir()
  (cache / file_name).write_bytes(b"stale")
  with pytest.raises(ValueError, match="delete"):
    pretrained("net", cache_dir=cache, url_base=server.url)
  assert (cache / file_name).read_bytes() == b"stale"
  assert server.requests == []


def test_default_cache_dir(tmp_path, monkeypatch):
  monkeypatch.setenv(pretrained_module.CACHE_ENV, str(tmp_path / "root"))
  assert pretrained_module.default_cache_dir() == tmp_path / "root" / "torchvision"
  monkeypatch.delenv(pretrained_module.CACHE_ENV)
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  expected = tmp_path / "home" / ".cache" / "salijax" / "torchvision"
  assert pretrained_module.default_cache_dir() == expected


def test_unknown_arch_or_weights(fake_manifest):
  add_checkpoint(fake_manifest, "net", b"w")
  with pytest.raises(ValueError, match=r"arch must be one of \['net'\], got 'resnet9'"):
    pretrained("resnet9")
  with pytest.raises(ValueError, match=r"weights must be one of \['IMAGENET1K_V1'\]"):
    pretrained("net", weights="IMAGENET1K_V9")


def test_manifest_entries_match_their_file_names():
  checkpoints = pretrained_module.manifest()["checkpoints"]
  assert {"resnet18", "resnet34", "resnet50", "vgg11", "vgg11_bn", "vgg16",
          "efficientnet_b0", "mobilenet_v2", "mobilenet_v3_large"} <= set(checkpoints)
  for arch, variants in checkpoints.items():
    for entry in variants.values():
      # efficientnet_b0's file is "efficientnet_b0_rwightman-7f5810bc.pth".
      match = re.fullmatch(
        rf"https://download\.pytorch\.org/models/{arch}(?:_[a-z]+)?-([0-9a-f]{{8}})\.pth",
        entry["url"],
      )
      assert match, entry["url"]
      preprocessing = entry.get("preprocessing", {})
      assert set(preprocessing) <= {"resize", "crop", "interpolation"}
      assert preprocessing.get("interpolation", "bilinear") in ("bilinear", "bicubic")
      assert re.fullmatch(r"[0-9a-f]{8}|[0-9a-f]{64}", entry["sha256"])
      assert entry["sha256"].startswith(match.group(1))
  assert len(checkpoints["resnet18"]["IMAGENET1K_V1"]["sha256"]) == 64


def test_imagenet_classes_file():
  text = importlib.resources.files("salijax.porting").joinpath("imagenet_classes.json")
  classes = json.loads(text.read_text())
  assert len(classes) == 1000 == len(set(classes))
  assert all(isinstance(c, str) and c.strip() == c and c for c in classes)
  assert classes[0] == "tench" and classes[-1] == "toilet tissue"


# --- load_weights ----------------------------------------------------------------


@pytest.fixture
def fake_port(monkeypatch):
  """Replaces torchvision_to_flax; returns the list of its calls."""
  calls = []

  def torchvision_to_flax(
    arch, state_dict, *, num_classes=None, head="linear", key=None
  ):
    calls.append(
      dict(
        arch=arch, state_dict=state_dict, num_classes=num_classes, head=head, key=key
      )
    )
    return {"params": "ported"}

  monkeypatch.setattr(pretrained_module, "torchvision_to_flax", torchvision_to_flax)
  return calls


def assert_state_dicts_equal(actual, expected):
  assert list(actual) == list(expected)
  for name in expected:
    np.testing.assert_array_equal(actual[name], expected[name])


def test_load_weights_none_is_none(fake_port, fake_manifest):
  assert load_weights("resnet18", "none", num_classes=10) is None
  assert fake_port == []


def test_load_weights_from_a_path(fake_port):
  variables = load_weights(
    "resnet18", str(CHECKPOINT), num_classes=10, head="mlp", key=3
  )
  assert variables == {"params": "ported"}
  (call,) = fake_port
  assert (call["arch"], call["num_classes"], call["head"], call["key"]) == (
    "resnet18",
    10,
    "mlp",
    3,
  )
  assert_state_dicts_equal(call["state_dict"], read_pth(CHECKPOINT))


def test_load_weights_from_torchvision(
  tmp_path, server, fake_manifest, fake_port, monkeypatch
):
  data = CHECKPOINT.read_bytes()
  server.files[add_checkpoint(fake_manifest, "resnet18", data)] = data
  monkeypatch.setenv(pretrained_module.URL_BASE_ENV, server.url)
  load_weights("resnet18", "torchvision", num_classes=1000, cache_dir=tmp_path)
  (call,) = fake_port
  assert_state_dicts_equal(call["state_dict"], read_pth(CHECKPOINT))
  assert len(server.requests) == 1


def test_load_weights_missing_path(tmp_path, fake_port):
  missing = tmp_path / "nowhere.pth"
  with pytest.raises(ValueError, match="pretrained") as info:
    load_weights("resnet18", missing, num_classes=10)
  assert str(missing) in str(info.value)
  assert fake_port == []


def test_load_weights_wrong_type(fake_port):
  with pytest.raises(TypeError, match="pretrained must be one of"):
    load_weights("resnet18", None, num_classes=10)


def test_load_weights_torchvision_end_to_end(
  torch, tmp_path, server, fake_manifest, monkeypatch
):
  # A torchvision-layout ResNet18 in the legacy format, served as "torchvision",
  # ports as torch's own arrays do.
  from experiments import torch_models  # noqa: PLC0415 - needs torch

  state_dict = torch_models.build("resnet18", seed=1).state_dict()
  path = tmp_path / "resnet18.pth"
  torch.save(state_dict, path, _use_new_zipfile_serialization=False)
  data = path.read_bytes()
  server.files[add_checkpoint(fake_manifest, "resnet18", data, prefix_only=True)] = data
  monkeypatch.setenv(pretrained_module.URL_BASE_ENV, server.url)
  variables = load_weights(
    "resnet18", "torchvision", num_classes=1000, cache_dir=tmp_path / "cache"
  )
  expected = torchvision_to_flax(
    "resnet18", {k: v.numpy() for k, v in state_dict.items()}, num_classes=1000
  )
  assert jax.tree.structure(variables) == jax.tree.structure(expected)
  jax.tree.map(np.testing.assert_array_equal, variables, expected)
