r"""The ResNet18/VGG11 study this project grew from: ImageNet weights, imagenette.

torchvision's ImageNet ResNet18 and VGG11, each retrained on imagenette (10
ImageNet classes) by feature extraction (frozen backbone, new head) and by
fine-tuning (the last block and the head), then explained with GradCAM, RISE
(500 masks, 7 x 7 cells, p = 0.1), SIDU and LIME (50 SLIC segments, 1000
samples), and scored by insertion (from a 127 x 127, sigma 17 blur) and
deletion (to black) with 500 pixels a step, on the ground-truth class
(docs/methods.md#seed-parity). It needs the internet once, for the weights and
the dataset:

  pip install -e ".[tf]"     # TFDS decodes imagenette's JPEGs with TensorFlow
  python -m tensorflow_datasets.scripts.download_and_prepare \
    --datasets=imagenette --file_format=array_record
  python -m experiments.benchmark --config=experiments/configs/benchmark_imagenette.py \
    --workdir=workdir/imagenette

The weights go to ~/.cache/salijax (SALIJAX_CACHE), checked against their
SHA-256. Explaining all 3925 validation images takes hours on a GPU
(--config.num_images=500 for a sample); on a CPU, days.
"""

import ml_collections

from experiments.configs import benchmark


def get_config() -> ml_collections.ConfigDict:
  """The study's config (fields as in experiments/configs/benchmark.py)."""
  config = benchmark.get_config()
  config.dataset = "imagenette"
  config.synthetic = ml_collections.ConfigDict()  # not used
  config.train_split = "train"
  config.eval_split = "validation"
  config.image_size = 224
  config.crop_fraction = 0.875  # resize to 256, centre crop 224 (torchvision's evaluation)

  config.models = "resnet18,vgg11"
  config.modes = "feature_extraction,finetune"
  config.pretrained = "torchvision"
  train = config.train
  train.crop_scale = (0.08, 1.0)  # torchvision's RandomResizedCrop
  train.batch_size = 64
  train.eval_batch_size = 100
  train.num_epochs = 5
  train.optimizer = "sgd"
  train.learning_rate = 0.01
  train.momentum = 0.9
  train.weight_decay = 1e-4
  train.warmup_epochs = 0.0
  config.run_overrides = ml_collections.ConfigDict({
      "resnet18_finetune": {"trainable_layers": "layer4,head"},
      "vgg11_finetune": {"trainable_layers": "features.16,features.18,classifier,head"},
  })

  config.num_images = 0  # the whole validation split
  config.batch_size = 32
  config.label_modes = "ground_truth"
  config.perturbations = ""
  config.diagnostics_top_k = 5
  config.methods = "gradcam,rise,sidu,lime,fake_cam,random"
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 500, "cell": 7, "p": 0.1, "chunk": 100},
      "lime": {"num_samples": 1000, "num_segments": 50, "chunk": 50},
      "sidu": {"chunk": 64},
  })
  config.insertion_deletion = ml_collections.ConfigDict({
      "step_pixels": 500, "insertion_substrate": "blur", "deletion_substrate": "zero",
      "substrate_space": "pixel", "blur_size": 127, "blur_sigma": 17.0, "chunk": 128})
  config.pointing_tolerance = 15.0  # imagenette has no object masks: not used
  config.metrics = ""  # no region metrics without object masks
  config.metric_options = ml_collections.ConfigDict()
  config.sanity = ml_collections.ConfigDict({
      "num_images": 16, "methods": "gradcam,rise,sidu,lime,random", "mode": "cascading"})
  return config
