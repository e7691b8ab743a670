"""The report's curves: metrics over epochs, one line per run (matplotlib, no display)."""

from __future__ import annotations

import io

from colorlab.reporting.runs import Run

#: Figures of the report: file stem -> (title, [(panel title, metric key)]).
CURVES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "loss": ("Loss", [("train", "train/loss"), ("validation", "val/loss")]),
    "seed_accuracy": (
        "seed_accuracy (the reference's Keras accuracy)",
        [("train", "train/seed_accuracy"), ("validation", "val/seed_accuracy")],
    ),
    "psnr": ("Validation PSNR (dB)", [("validation", "val/psnr")]),
    "colorfulness": (
        "Validation colourfulness (dashed: the photos')",
        [("validation", "val/colorfulness_pred")],
    ),
}


def curve_data(runs: list[Run]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """metric key -> run label -> (epoch, value) pairs, for every key in `CURVES` (runs
    without a value for a key are left out of it)."""
    keys = [key for _, panels in CURVES.values() for _, key in panels]
    data: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for key in keys:
        series = {run.label: run.series(key) for run in runs}
        data[key] = {label: points for label, points in series.items() if points}
    return data


def curve_pngs(runs: list[Run]) -> dict[str, bytes]:
    """file stem -> PNG bytes of each figure in `CURVES`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    data = curve_data(runs)
    pngs = {}
    for stem, (title, panels) in CURVES.items():
        figure, axes = plt.subplots(
            1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False, sharey=True
        )
        for axis, (panel, key) in zip(axes[0], panels, strict=True):
            for label, points in data[key].items():
                epochs, values = zip(*points, strict=True)
                axis.plot(epochs, values, marker="o" if len(points) < 20 else None, label=label)
            if stem == "colorfulness":
                _photos_colorfulness(axis, runs)
            axis.set_title(panel)
            axis.set_xlabel("epoch")
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            axis.grid(alpha=0.3)
            if not data[key]:
                axis.text(
                    0.5, 0.5, "not logged", ha="center", va="center", transform=axis.transAxes
                )
        figure.suptitle(title)
        figure.tight_layout()
        handles, labels = axes[0][0].get_legend_handles_labels()
        if handles:  # beside the panels, as wide as the labels need
            figure.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(figure)
        pngs[stem] = buffer.getvalue()
    return pngs


def hint_curve_png(curves: dict[str, list[tuple[int, float]]]) -> bytes:
    """PSNR against the number of hint points, one line per run that takes hints
    (``curves``: run label -> (points, PSNR dB) pairs); the x axis is logarithmic past 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.0, 3.8))
    for label, points in curves.items():
        counts, values = zip(*points, strict=True)
        axis.plot(counts, values, marker="o", label=label)
    axis.set_xscale("symlog", linthresh=1)
    axis.set_xlabel("hint points per photo (sampled from the truth, seeded)")
    axis.set_ylabel("PSNR (dB)")
    axis.set_title("PSNR against the number of hints")
    axis.grid(alpha=0.3)
    if curves:
        axis.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _photos_colorfulness(axis, runs: list[Run]) -> None:
    targets = [v for run in runs for _, v in run.series("val/colorfulness_target")]
    if targets:
        axis.axhline(sum(targets) / len(targets), color="gray", linestyle="--", linewidth=1)
