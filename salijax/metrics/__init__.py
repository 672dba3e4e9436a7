"""Metrics of saliency maps: pure functions returning NamedTuples of per-image arrays.

  from salijax import metrics
  labels = metrics.predicted_labels(clf, images)
  curves = metrics.insertion_deletion(clf, images, maps, labels)   # .insertion_auc f32[B]
  change = metrics.confidence_change(clf, images, maps, labels)    # .drop f32[B]
  metrics.summarize_confidence_change(change)                      # percentages
"""

from salijax.metrics.confidence_change import (
    ConfidenceChange,
    confidence_change,
    summarize_confidence_change,
)
from salijax.metrics.insertion_deletion import (
    InsertionDeletion,
    insertion_deletion,
    predicted_labels,
)

__all__ = ["ConfidenceChange", "InsertionDeletion", "confidence_change", "insertion_deletion",
           "predicted_labels", "summarize_confidence_change"]
