"""Any JAX image classifier as a `salijax.Classifier`: `salijax.wrap`.

    import salijax
    clf = salijax.wrap(module, variables, layer="Conv_1")      # Flax linen
    maps = salijax.methods.gradcam(clf, images)                # f32[B,H,W]

`salijax.wrapping.wrap` documents every framework and option;
`layer_names` lists a model's layers; `Preprocess` maps salijax's images to a
model's input; `guide_relus` makes any function's ReLUs guided;
`explicit_kernel_transposes` makes any function's gradient faster inside
XLA:CPU loops (its convolutions' input gradients read transposed kernels).
"""

from salijax.wrapping.conv_transposes import explicit_kernel_transposes
from salijax.wrapping.guided_relus import guide_relus
from salijax.wrapping.layer_names import layer_names
from salijax.wrapping.preprocessing import Preprocess
from salijax.wrapping.wrap import FRAMEWORKS, framework_of, wrap

__all__ = ["FRAMEWORKS", "Preprocess", "explicit_kernel_transposes", "framework_of", "guide_relus",
           "layer_names", "wrap"]
