"""Writing the report: ``report.html`` (one self-contained file, pictures embedded, opens
offline) and ``report.md`` (the same, pictures beside it)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from typing import Any

from colorlab.reporting.tables import METRIC_COLUMNS, best_cells

SEED_ACCURACY_NOTE = (
    "seed_accuracy is the reference's “accuracy”: Keras' categorical accuracy on the "
    "2-channel ab output (the fraction of pixels where argmax over (a, b) of the prediction "
    "equals that of the truth)."
)


@dataclass
class ReportContent:
    """What a report shows; ``figures`` are PNG bytes (file stem -> bytes), ``grid`` JPEG."""

    title: str
    summary: str
    notes: list[str]
    override_keys: list[str]
    rows: list[dict[str, Any]]
    figures: dict[str, bytes] = field(default_factory=dict)
    grid: bytes | None = None
    grid_caption: str = ""


def _status(row: dict[str, Any]) -> str:
    status = row.get("status", "")
    return f"{status}: {row['error']}" if row.get("error") else status


def _headers(content: ReportContent) -> list[str]:
    """The table's column titles, the same in both pages."""
    return ["run", "status", *content.override_keys, *(c.title for c in METRIC_COLUMNS)] + [
        "folder",
        "command",
    ]


def render_html(content: ReportContent) -> str:
    marked = best_cells(content.rows)
    head = _headers(content)
    lines = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(content.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(content.title)}</h1>",
        f'<p class="summary">{html.escape(content.summary)}</p>',
    ]
    if content.notes:
        lines.append('<ul class="notes">')
        lines += [f"<li>{html.escape(note)}</li>" for note in content.notes]
        lines.append("</ul>")
    lines += [
        "<h2>Runs</h2>",
        '<div class="scroll"><table id="runs"><thead><tr>',
        "".join(f"<th>{html.escape(h)}</th>" for h in head),
        "</tr></thead><tbody>",
    ]
    for i, row in enumerate(content.rows):
        status_class = html.escape(
            str(row.get("status", "")).split()[0] if row.get("status") else ""
        )
        cells = [
            f"<td>{html.escape(row['label'])}</td>",
            f'<td class="status {status_class}">{html.escape(_status(row))}</td>',
        ]
        overrides = row.get("overrides", {})
        cells += [
            f"<td>{html.escape(str(overrides.get(k, '')))}</td>" for k in content.override_keys
        ]
        for column in METRIC_COLUMNS:
            best = ' class="best"' if (i, column.key) in marked else ""
            cells.append(f"<td{best}>{column.format(row.get(column.key))}</td>")
        cells.append(f"<td><code>{html.escape(row.get('folder') or '')}</code></td>")
        cells.append(f"<td><code>{html.escape(row.get('command') or '')}</code></td>")
        lines.append(f'<tr class="run">{"".join(cells)}</tr>')
    lines += [
        "</tbody></table></div>",
        f'<p class="legend">Bold: the best run in that column. Validation metrics are the best '
        f"epoch's; test metrics are this report's own scoring of each run's best checkpoint on "
        f"the same photos. {html.escape(SEED_ACCURACY_NOTE)}</p>",
    ]
    if content.figures:
        lines.append("<h2>Curves</h2>")
        for stem, png in content.figures.items():
            lines.append(
                f'<img class="curve" id="curve-{stem}" alt="{stem} over epochs" '
                f'src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            )
    if content.grid:
        lines += [
            "<h2>Test photos</h2>",
            f"<p>{html.escape(content.grid_caption)}</p>",
            f'<img id="grid" alt="test photos, colorized by every run" '
            f'src="data:image/jpeg;base64,{base64.b64encode(content.grid).decode()}">',
        ]
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def render_markdown(content: ReportContent, figure_files: dict[str, str], grid_file: str | None):
    marked = best_cells(content.rows)
    head = _headers(content)
    lines = [f"# {content.title}", "", content.summary, ""]
    lines += [f"- {note}" for note in content.notes]
    if content.notes:
        lines.append("")
    lines += ["## Runs", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for i, row in enumerate(content.rows):
        cells = [row["label"], _status(row)]
        cells += [str(row.get("overrides", {}).get(k, "")) for k in content.override_keys]
        for column in METRIC_COLUMNS:
            text = column.format(row.get(column.key))
            cells.append(f"**{text}**" if (i, column.key) in marked else text)
        cells += [
            f"`{row['folder']}`" if row.get("folder") else "",
            f"`{row['command']}`" if row.get("command") else "",
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += [
        "",
        "Bold: the best run in that column. Validation metrics are the best epoch's; test "
        "metrics are this report's own scoring of each run's best checkpoint on the same "
        "photos. " + SEED_ACCURACY_NOTE,
        "",
    ]
    if figure_files:
        lines += ["## Curves", ""]
        lines += [f"![{stem}]({path})" for stem, path in figure_files.items()]
        lines.append("")
    if grid_file:
        lines += [
            "## Test photos",
            "",
            content.grid_caption,
            "",
            f"![test photos]({grid_file})",
            "",
        ]
    return "\n".join(lines)


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f2f2f2; position: sticky; top: 0; text-align: left; }
td:first-child, td.status, td code { text-align: left; }
td.best { font-weight: bold; background: #e8f5e9; }
td.status.failed, td.status.interrupted { color: #b00020; }
td.status.running { color: #8a6d00; }
code { font-size: 0.95em; white-space: pre; }
img.curve { display: block; max-width: 100%; margin: 0.8em 0; }
img#grid { max-width: 100%; image-rendering: pixelated; }
.notes li, .summary, .legend { max-width: 60em; }
"""
