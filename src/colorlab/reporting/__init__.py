"""Reports over training runs (``python -m colorlab.report``): reading run folders
(`runs`), the table (`tables`), the curves (`figures`), the pages (`pages`), and
`write_report`, which puts them together over `colorlab.inference`."""

from colorlab.reporting.runs import Run, find_runs
from colorlab.reporting.writer import REPORT_OUTPUTS, write_report

__all__ = ["REPORT_OUTPUTS", "Run", "find_runs", "write_report"]
