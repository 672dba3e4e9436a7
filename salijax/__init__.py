"""salijax: saliency methods and metrics for image classifiers, in JAX."""

from salijax.classifier import Classifier
from salijax.compute_dtype import with_compute_dtype
from salijax.wrapping import wrap

__all__ = ["Classifier", "with_compute_dtype", "wrap"]
__version__ = "0.1.0"
