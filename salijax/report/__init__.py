"""The benchmark's report: long-format results, summary.md, manifest.json and PNG figures.

  from salijax import report
  report.write_results(rows, report_dir)           # results.csv + results.json
  rows = report.read_results(report_dir)
  text = report.summary_markdown(rows, title="ResNet18 on synthetic shapes")
  text += report.perturbation_markdown(rows)      # perturbed images: robustness, changes
  diagnostics = report.prediction_diagnostics(probabilities, class_names, top_k=5)
  atomic_files.write_text_atomic(report_dir / "summary.md", text)
  atomic_files.write_json_atomic(report_dir / "manifest.json", report.build_manifest(config))
  report.overlay_grid(report_dir / "overlays.png", images, {"gradcam": maps})
  report.insertion_deletion_figure(report_dir / "curves.png",
                                   {"gradcam": (insertion_curves, deletion_curves)})
  report.mean_curve_figure(report_dir / "pixel_flipping.curve.png", {"gradcam": curves})
  report.sanity_figure(report_dir / "sanity.png", block_names, similarity, baseline)
  report.pointing_figure(report_dir / "pointing.png", images, {"gradcam": maps}, masks)
  report.convergence_figure(report_dir / "mask_search.png", objective,
                            {"mask_search": report.MethodCost(2.1, "forward", 5000)})
  report.training_figure(report_dir / "training.png", {"resnet18/scratch": records})
  page = report.benchmark_page_html(title, rows, views)   # index.html: tables, gallery
  page = report.explanations_page_html(title, images, methods)   # explain_image's page

`METRICS` names, titles and orients every metric of the tables; each row of
results.csv is one value of one image (`COLUMNS`). The figures need
matplotlib, imported only when one is drawn, with the non-interactive "Agg"
backend (`plotting`).
"""

from salijax.report.benchmark_page import MapView, benchmark_page_html
from salijax.report.confidence_interval import mean_confidence_interval
from salijax.report.convergence_figure import MethodCost, convergence_figure
from salijax.report.curve_figure import insertion_deletion_figure, mean_curve_figure
from salijax.report.explanations_page import ExplainedImage, explanations_page_html
from salijax.report.manifest import build_manifest
from salijax.report.markdown_html import markdown_html
from salijax.report.metric_catalogue import METRICS, MetricInfo, metric_info, ordered_metrics
from salijax.report.overlay_grid import overlay_grid
from salijax.report.overlay_image import overlay_png
from salijax.report.perturbation_table import perturbation_markdown
from salijax.report.plotting import pyplot, save_figure
from salijax.report.pointing_figure import PointingMarks, pointing_figure
from salijax.report.prediction_diagnostics import prediction_diagnostics
from salijax.report.results_table import COLUMNS, read_results, write_results
from salijax.report.sanity_figure import sanity_figure
from salijax.report.summary_table import summary_markdown
from salijax.report.training_figure import training_figure

__all__ = [
    "COLUMNS", "METRICS", "ExplainedImage", "MapView", "MethodCost", "MetricInfo",
    "PointingMarks", "benchmark_page_html", "build_manifest", "convergence_figure",
    "explanations_page_html", "insertion_deletion_figure", "markdown_html",
    "mean_confidence_interval", "mean_curve_figure", "metric_info", "ordered_metrics",
    "overlay_grid", "overlay_png", "perturbation_markdown", "pointing_figure",
    "prediction_diagnostics", "pyplot", "read_results", "sanity_figure", "save_figure",
    "summary_markdown", "training_figure", "write_results",
]
