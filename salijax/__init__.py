"""salijax: saliency methods and metrics for image classifiers, in JAX."""

from salijax.classifier import Classifier
from salijax.wrapping import wrap

__all__ = ["Classifier", "wrap"]
__version__ = "0.1.0"
