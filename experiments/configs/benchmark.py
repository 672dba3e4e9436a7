r"""Benchmark config: ResNet18 and VGG11 from scratch on the built-in synthetic shapes.

  python -m experiments.benchmark --config=experiments/configs/benchmark.py \
      --workdir=workdir/benchmark

Sized to finish within 10 minutes on a 2-core CPU (BENCHMARKS.md has the
measured time per stage): 72 px images of 5 shape classes (XLA:CPU runs
ResNet18 many times slower at 40-64 px), 1500 training images, ResNet18 for 6
epochs, then 10 test images explained by every method and scored by every
metric. The VGG is VGG11 with BatchNorm (vgg11_bn) whose two hidden classifier
layers are 256 wide instead of 4096 (torchvision's 130 M classifier parameters
would take most of the budget) and have no dropout, trained for 3 epochs (it
costs ~4x ResNet18 per image) with AdamW at 3e-4, classifier.0 at 1e-5
(`lr_scales`) and no random crops. With torchvision's dropout of 0.5 it learned
several times slower (33 % after 3 epochs); plain VGG11 (no BatchNorm) and
VGG11-BN at one learning rate stayed near chance (BENCHMARKS.md).
The transfer configs (benchmark_imagenette.py) use plain VGG11, as torchvision
ships it. Overrides, e.g. more images and RISE masks:

  python -m experiments.benchmark --config=experiments/configs/benchmark.py \
    --workdir=workdir/big --config.num_images=200 --config.method_options.rise.num_masks=2000

Restarting a command with the same --workdir resumes the run; finished stages are
skipped. experiments/configs/benchmark_imagenette.py is the ImageNet-weights study.
"""

import ml_collections

from experiments.configs import train as train_config


def get_config() -> ml_collections.ConfigDict:
  """The default benchmark config (fields checked by salijax.pipeline.validate_config)."""
  config = ml_collections.ConfigDict()
  config.seed = 0
  # Data: shared by training, explanation and evaluation.
  config.dataset = "synthetic"
  config.data_dir = ""  # "" = the salijax.data default
  config.synthetic = ml_collections.ConfigDict(
      {"image_size": 72, "num_train": 1500, "num_test": 300, "seed": 0, "num_classes": 5})
  config.train_split = "train"
  config.eval_split = "test"
  config.image_size = 72
  config.crop_fraction = 1.0  # the whole image (the object may be anywhere)

  # Training: one run per (model, mode); `train` is experiments/configs/train.py's
  # config (its data fields are replaced by the ones above), `run_overrides` are
  # applied on top, first those keyed by model, then by "<model>_<mode>".
  config.models = "resnet18,vgg11_bn"
  # vit_b_16 needs image_size a multiple of 16 (e.g. 64 or 80; 224 with pretrained weights).
  # A comma list of "scratch", "feature_extraction", "finetune" and "pretrained" (the ImageNet
  # model as it is, not trained: experiments/configs/imagenet_val.py).
  config.modes = "scratch"
  # The weights the transfer modes start from: "none" | "torchvision" | a .pth path.
  config.pretrained = "none"
  config.train = train_config.get_config()
  config.train.batch_size = 16
  config.train.num_epochs = 6
  # Not read: run_benchmark's `progress` (--progress) shows the training's progress lines.
  config.train.progress_bar = False
  config.train.checkpoint_every_steps = 1000  # at the end of every epoch (each save costs ~1 s)
  config.run_overrides = ml_collections.ConfigDict({
      # AdamW moves every weight by about the learning rate per step, so classifier.0's
      # 25088 inputs shift its outputs ~25088 x more than a conv's: at 1e-3 its ReLUs die
      # (the loss stays at ln 5). Its learning rate is scaled down to 1e-5; 3e-4 elsewhere.
      # Without dropout and random crops VGG11-BN reaches ~80 % in 3 epochs.
      "vgg11_bn": {"classifier_width": 256, "classifier_dropout": 0.0, "learning_rate": 3e-4,
                   "lr_scales": "classifier.0=0.03", "num_epochs": 3, "crop_scale": (1.0, 1.0)},
  })

  # Explanation: every method explains the same `num_images` test images (a
  # seeded sample of the split), `batch_size` at a time.
  config.num_images = 10
  config.batch_size = 5
  # The classes explained and scored, a comma list of "ground_truth", "predicted" and
  # "least_likely" (resolved on the clean image; each one is a dimension of the units).
  config.label_modes = "ground_truth"
  # Perturbed copies of the images, explained and scored too (a comma list, "" for none):
  # rotate<degrees>, resize<f>, crop<f> (geometric, f in (0, 1]), fgsm<eps> (eps in [0, 1]).
  config.perturbations = ""
  config.diagnostics_top_k = 5  # report/diagnostics.json: each image's k most and least likely
  config.methods = "gradcam,rise,sidu,lime,fake_cam,random"  # any salijax.methods.names()
  config.controls = "fake_cam,random"  # reported as controls, never "best"
  # Chunks of 16 masks/samples/channels per image: forwards of 5 x 16 = 80 images
  # (XLA:CPU runs ResNet18 at 72 px about half as fast on batches of 512 as on 32-256).
  config.method_options = ml_collections.ConfigDict({
      "rise": {"num_masks": 192, "cell": 7, "p": 0.5, "chunk": 16},
      "lime": {"num_samples": 150, "num_segments": 25, "chunk": 16},
      "sidu": {"chunk": 16},
  })

  # Evaluation.
  config.insertion_deletion = ml_collections.ConfigDict({
      "step_pixels": 216, "insertion_substrate": "blur", "deletion_substrate": "zero",
      "substrate_space": "pixel", "chunk": 64})
  # 15 px at 224 px (docs/metrics.md#pointing_game), scaled to 72 px; 15 px would cover most
  # of a 72 px image.
  config.pointing_tolerance = 5.0
  # Extra metrics (a comma list, "" for none): any metric of salijax.metrics.names() with
  # per-image fields, beyond the ones above that are always computed; each field goes into
  # the evaluate files, results.csv and summary.md as "<metric>.<field>". Region metrics
  # (localisation) need a dataset with object masks or boxes (skipped without, with a
  # warning). `metric_options.<metric>` holds its keyword options (those of its signature);
  # method metrics use the unit's method with its config.method_options. A finished workdir
  # accepts new metrics or options: only they are computed.
  # The default adds two metrics that cost little at 72 px: localisation (the region) and
  # region perturbation's AOPC (21 forwards per image); the rest of
  # docs/metrics.md#families is one entry away (ROAD's imputation added 30-50 s to the
  # evaluate stage, which took the default run past 10 minutes: BENCHMARKS.md).
  config.metrics = "localisation,region_perturbation"
  config.metric_options = ml_collections.ConfigDict({
      # top_k_intersection's k: Quantus's 1000 pixels at 224 px (2 %), scaled to 72 px.
      "localisation": {"k": 100},
      # Quantus's 8 px patches (81 at 72 px), the first 20 of them removed.
      "region_perturbation": {"patch_size": 8, "regions_evaluation": 20},
  })
  # The parameter-randomisation sanity check (cascading) on the first images.
  config.sanity = ml_collections.ConfigDict({
      "num_images": 4, "methods": "gradcam,random", "mode": "cascading"})

  # The dtype of every model forward after training (predictions, methods, metrics, the sanity
  # check): "float32", or "bfloat16" (or "float16") for accelerators, the maps, scores and their
  # sums staying float32 (salijax.compute_dtype; README "Precision"). Training stays float32.
  config.compute_dtype = "float32"

  # Report.
  config.overlay_images = 6
  config.colormap = "jet"
  return config
