"""The protocol configs (experiments/configs/protocol.py, protocol_imagenette.py,
protocol_mask_search.py): valid, and with the ACML 2024 protocol's label modes, perturbations
and settings (the mask search's: the paper's)."""

from experiments.configs import (
    benchmark,
    benchmark_imagenette,
    protocol,
    protocol_imagenette,
    protocol_mask_search,
)
from salijax import methods
from salijax.pipeline import benchmark_config

PERTURBATIONS = ("none", "rotate45", "rotate135", "rotate225", "rotate315", "resize0.75",
                 "crop0.8", "fgsm0.03")


def test_the_synthetic_protocol_is_the_default_resnet18_with_the_protocol():
  config = protocol.get_config()
  benchmark_config.validate_config(config)
  assert benchmark_config.label_modes(config) == ("ground_truth", "predicted", "least_likely")
  assert benchmark_config.perturbation_names(config) == PERTURBATIONS
  assert {"gradcam", "rise", "lime", "fake_cam", "random"} <= set(
      benchmark_config.method_names(config))
  default = benchmark.get_config()
  assert config.models == "resnet18"
  assert (config.image_size, config.train.to_dict()) == (default.image_size,
                                                         default.train.to_dict())
  assert "--config=experiments/configs/protocol.py" in protocol.__doc__


def test_the_imagenette_protocol_has_the_study_settings():
  config = protocol_imagenette.get_config()
  benchmark_config.validate_config(config)
  study = benchmark_imagenette.get_config()
  assert (config.dataset, config.models, config.modes, config.pretrained) == (
      study.dataset, study.models, study.modes, study.pretrained)
  assert benchmark_config.perturbation_names(config) == PERTURBATIONS
  assert benchmark_config.label_modes(config) == ("ground_truth", "predicted", "least_likely")
  curves = config.insertion_deletion
  assert (curves.step_pixels, curves.blur_size, curves.blur_sigma) == (1792, 5, 5.0)
  assert config.method_options.rise.to_dict() == study.method_options.rise.to_dict()
  assert "--config=experiments/configs/protocol_imagenette.py" in protocol_imagenette.__doc__


def test_the_config_runs_the_papers_settings():
  config = protocol_mask_search.get_config()
  benchmark_config.validate_config(config)
  synthetic = protocol.get_config()
  assert (config.models, config.label_modes, config.perturbations, config.num_images) == (
      synthetic.models, synthetic.label_modes, synthetic.perturbations, synthetic.num_images)
  assert "mask_search" in benchmark_config.method_names(config)
  options = benchmark_config.method_options(config, "mask_search")
  assert options == {"grid": 8, "initial_fraction": 0.3, "num_steps": 5000, "rate": 0.02,
                     "threshold": 0.96}
  # The paper's settings are the method's defaults (docs/methods.md#mask_search).
  assert {k: v for k, v in methods.info("mask_search").defaults().items() if k in options} == (
      options)
  assert "--config=experiments/configs/protocol_mask_search.py" in protocol_mask_search.__doc__
