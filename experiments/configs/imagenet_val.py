r"""The ImageNet-validation protocol: torchvision's ImageNet ResNet18 and VGG11, as they are.

Both models (mode "pretrained": nothing is trained) explain the ground-truth
class of all 50,000 images of ImageNet 2012's validation split with GradCAM,
RISE (4000 masks, 7 x 7 cells, p = 0.5), SIDU and LIME (50 SLIC segments,
1000 samples), each map scored by insertion (from an 11 x 11, sigma 5 blur)
and deletion (to the mean colour) with 224 pixels a step (the RISE paper's
ImageNet settings, docs/metrics.md#insertion_deletion). Images are shown as
torchvision's evaluation shows them: the shorter side resized to 256
(bilinear, antialiased), the centre 224 x 224 crop. The report's accuracy of
each model is its top-1 on the explained images (on the whole split it should
be close to torchvision's 69.76 % for ResNet18 and 69.02 % for VGG11).

ImageNet cannot be downloaded by a script: register at
https://image-net.org/download-images, download ILSVRC2012_img_val.tar (6.7 GB;
the training tar is not needed), put it in ~/tensorflow_datasets/downloads/manual/
and prepare it once (TFDS encodes with TensorFlow; README, "The ImageNet-validation
protocol"):

  pip install -e ".[tf]"
  tfds build imagenet2012 --file_format=array_record
  python -m experiments.benchmark --config=experiments/configs/imagenet_val.py \
    --workdir=workdir/imagenet_val

The weights (torchvision's, checked against their SHA-256) go to ~/.cache/salijax
(SALIJAX_CACHE) on first use. Every batch is split over the local devices, and
several JAX processes (--num_processes, README) share the batches; with no
training, the processes can start on an empty workdir. `batch_size` is per
process: 64 images and chunks of 8 make forwards of 512 images, which fill one
GPU; on a host of 8 devices, --config.batch_size=512. --config.num_images=1000
explains a seeded sample.
"""

import ml_collections

from experiments.configs import benchmark


def get_config() -> ml_collections.ConfigDict:
  """The protocol's config (fields as in experiments/configs/benchmark.py)."""
  config = benchmark.get_config()
  config.dataset = "imagenet2012"
  config.synthetic = ml_collections.ConfigDict()  # not used
  config.train_split = "train"  # not read: no run trains
  config.eval_split = "validation"
  config.image_size = 224
  config.crop_fraction = 0.875  # resize to 256, centre crop 224 (torchvision's evaluation)

  config.models = "resnet18,vgg11"
  config.modes = "pretrained"
  config.pretrained = "torchvision"
  config.run_overrides = ml_collections.ConfigDict()

  config.num_images = 0  # the whole validation split
  config.batch_size = 64
  config.label_modes = "ground_truth"
  config.perturbations = ""
  config.diagnostics_top_k = 5
  config.methods = "gradcam,rise,sidu,lime"
  config.controls = ""  # --config.methods=gradcam,rise,sidu,lime,fake_cam,random adds them
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 4000, "cell": 7, "p": 0.5, "chunk": 8},
      "lime": {"num_samples": 1000, "num_segments": 50, "chunk": 8},
      "sidu": {"chunk": 8},
  })
  config.insertion_deletion = ml_collections.ConfigDict({
      "step_pixels": 224, "insertion_substrate": "blur", "deletion_substrate": "mean",
      "substrate_space": "normalised", "blur_size": 11, "blur_sigma": 5.0, "chunk": 512})
  config.pointing_tolerance = 15.0  # imagenet2012 has no object masks: not used
  config.metrics = ""  # no region metrics without object masks
  config.metric_options = ml_collections.ConfigDict()
  config.sanity = ml_collections.ConfigDict({
      "num_images": 16, "methods": "gradcam,rise,sidu,lime", "mode": "cascading"})
  return config
