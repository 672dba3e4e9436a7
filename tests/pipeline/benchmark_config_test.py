"""salijax.pipeline.benchmark_config: validation, runs and their training configs."""

import pytest

from experiments.configs import benchmark as benchmark_configs
from salijax.pipeline import benchmark_config


@pytest.fixture
def config():
  return benchmark_configs.get_config()


def test_the_default_config_is_valid(config):
  benchmark_config.validate_config(config)


@pytest.mark.parametrize("field, value, message", [
    ("models", "resnet18,alexnet", "config.models"),
    ("models", "", "config.models"),
    ("modes", "scratch,distill", "config.modes"),
    ("methods", "gradcam,gradcam", "no repeated method"),
    ("methods", "gradcam,nonexistent", "config.methods"),
    ("controls", "fake_cam,lime_plus", "config.controls"),
    ("batch_size", 0, "config.batch_size"),
    ("batch_size", True, "config.batch_size"),
    ("num_images", -1, "config.num_images"),
    ("label_modes", "top1", "config.label_modes"),
    ("label_modes", "", "config.label_modes"),
    ("label_modes", "predicted,predicted", "config.label_modes"),
    ("perturbations", "rotate45,rotate45", "config.perturbations"),
    ("perturbations", "none", "config.perturbations"),
    ("perturbations", "blur3", "config.perturbations.*augmentation"),
    ("perturbations", "fgsm2", "config.perturbations.*FGSM"),
    ("perturbations", "resize0.1", "config.perturbations.*11 x 11"),
    ("diagnostics_top_k", 0, "config.diagnostics_top_k"),
    ("pointing_tolerance", -1.0, "config.pointing_tolerance"),
    ("compute_dtype", "float64", "config.compute_dtype: expected one of"),
    ("metrics", "localisation,localisation", "config.metrics: expected a comma list of distinct"),
    ("metrics", "localisation,nonexistent",
     "config.metrics: unknown metric .nonexistent.; catalogued: completeness, complexity, "
     ".*localisation"),
    ("metrics", "sanity_check", "config.metrics: sanity_check: none of its fields"),
])
def test_invalid_fields_are_named(config, field, value, message):
  config[field] = value
  with pytest.raises(ValueError, match=message):
    benchmark_config.validate_config(config)


def test_label_modes_and_perturbations_list_the_unit_dimensions(config):
  config.label_modes = "least_likely, ground_truth"
  config.perturbations = "rotate45,fgsm0.03, crop0.8"
  benchmark_config.validate_config(config)
  assert benchmark_config.label_modes(config) == ("least_likely", "ground_truth")
  assert benchmark_config.perturbation_names(config) == ("none", "rotate45", "fgsm0.03", "crop0.8")


def test_the_old_label_mode_field_is_refused(config):
  config.label_mode = "predicted"
  with pytest.raises(ValueError, match="unknown fields.*label_mode"):
    benchmark_config.validate_config(config)


def test_missing_and_unknown_fields_are_named(config):
  config.colour_map = "jet"
  with pytest.raises(ValueError, match="unknown fields.*colour_map"):
    benchmark_config.validate_config(config)
  del config["colour_map"]
  del config["colormap"]
  with pytest.raises(ValueError, match="missing fields.*colormap"):
    benchmark_config.validate_config(config)


def test_method_options_must_be_hyperparameters_of_the_method(config):
  config.method_options.rise.num_cells = 3
  with pytest.raises(ValueError, match="method_options.rise.*num_masks"):
    benchmark_config.validate_config(config)


def test_sanity_methods_are_a_subset_without_fake_cam(config):
  config.sanity.methods = "gradcam,fake_cam"
  with pytest.raises(ValueError, match="sanity.methods.*non-constant"):
    benchmark_config.validate_config(config)
  config.sanity.methods = "gradcam,score_cam_plus"
  with pytest.raises(ValueError, match="sanity.methods.*subset"):
    benchmark_config.validate_config(config)
  config.sanity.methods = "gradcam"
  config.sanity.num_images = 1
  with pytest.raises(ValueError, match="sanity.num_images"):
    benchmark_config.validate_config(config)


def test_run_overrides_must_name_a_run_and_a_training_field(config):
  config.run_overrides.vgg16_scratch = {"num_epochs": 1}
  benchmark_config.validate_config(config)  # vgg16 is an architecture, not in this run
  config.run_overrides.alexnet = {"num_epochs": 1}
  with pytest.raises(ValueError, match="run_overrides.alexnet"):
    benchmark_config.validate_config(config)
  del config.run_overrides["alexnet"]
  config.run_overrides.resnet18 = {"num_epoch": 1}
  with pytest.raises(ValueError, match="run_overrides.resnet18.num_epoch"):
    benchmark_config.validate_config(config)


def test_runs_list_models_then_modes(config):
  config.models = "resnet18, vgg11"
  config.modes = "feature_extraction,finetune"
  names = [run.name for run in benchmark_config.runs(config)]
  assert names == ["resnet18_feature_extraction", "resnet18_finetune",
                   "vgg11_feature_extraction", "vgg11_finetune"]


def test_train_config_applies_shared_fields_then_model_then_run_overrides(config):
  config.image_size = 48
  config.train.num_epochs = 9
  config.run_overrides = {"vgg11": {"num_epochs": 2, "learning_rate": 0.5},
                          "vgg11_scratch": {"learning_rate": 0.25}}
  vgg = benchmark_config.train_config(config, benchmark_config.Run("vgg11", "scratch"))
  resnet = benchmark_config.train_config(config, benchmark_config.Run("resnet18", "scratch"))
  assert (vgg.image_size, vgg.num_epochs, vgg.learning_rate) == (48, 2, 0.25)
  assert (resnet.image_size, resnet.num_epochs) == (48, 9)
  assert resnet.learning_rate == config.train.learning_rate
  assert (vgg.model, vgg.mode, vgg.pretrained) == ("vgg11", "scratch", "none")


def test_extra_metrics_and_their_options(config):
  config.metrics = " complexity,localisation"
  config.metric_options.localisation.k = 7
  config.metric_options.insertion_deletion = {"step_pixels": 8}  # not in metrics: ignored
  benchmark_config.validate_config(config)
  assert benchmark_config.metric_names(config) == ("complexity", "localisation")
  assert benchmark_config.metric_options(config, "localisation") == {"k": 7}
  assert benchmark_config.metric_options(config, "complexity") == {}
  config.metrics = ""
  benchmark_config.validate_config(config)
  assert benchmark_config.metric_names(config) == ()


@pytest.mark.parametrize("name, options, message", [
    ("localisation", {"top_k": 7}, r"config.metric_options.localisation: unknown options "
     r"\['top_k'\] of localisation; its options: k, ties, attribution.*\(localisation\(maps"),
    ("complexity", {"k": 7}, "config.metric_options.complexity: unknown options"),
    ("nonexistent", {"k": 7}, "config.metric_options.nonexistent: unknown metric"),
    ("pointing_game", 7, "config.metric_options.pointing_game: expected a ConfigDict"),
])
def test_bad_metric_options_are_named(config, name, options, message):
  config.metric_options[name] = options
  with pytest.raises(ValueError, match=message):
    benchmark_config.validate_config(config)
