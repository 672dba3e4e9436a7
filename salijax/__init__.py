"""salijax: saliency methods and metrics for image classifiers, in JAX."""

from salijax.classifier import Classifier

__all__ = ["Classifier"]
__version__ = "0.1.0"
