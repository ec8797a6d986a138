# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The learning-vs-forgetting plot shared by the testbed comparison and the evaluation summary."""

import math
from pathlib import Path


def learning_vs_forgetting_plot(
    points: dict[str, dict[str, tuple[float, float]]],
    path: Path,
    learned: str,
    kept: str,
    over_refusal: str,
    title: str,
    frontier: list[tuple[float, float]] | None = None,
) -> None:
    """One labelled point per model: x = `learned` (the new skill), y = `kept` (harmful requests still refused),
    colour = `over_refusal` (benign compliance, so over-refusal shows as a dark point). Each value is a
    (mean, spread) pair; a spread that is not NaN is drawn as an error bar. `frontier`: (x, min(kept,
    over_refusal)) points of a Pareto frontier, drawn as a dashed step line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 6))
    names = list(points)
    xs = [points[n][learned][0] for n in names]
    ys = [points[n][kept][0] for n in names]
    colors = [points[n][over_refusal][0] for n in names]
    for i, (name, x, y) in enumerate(zip(names, xs, ys)):
        xerr, yerr = points[name][learned][1], points[name][kept][1]
        if not (math.isnan(xerr) and math.isnan(yerr)):
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.6", lw=1, zorder=1)
        # Methods often land on the same spot (e.g. everything that keeps refusals but learns nothing): stack labels.
        crowd = sum(abs(x - xs[j]) < 0.04 and abs(y - ys[j]) < 0.04 for j in range(i))
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4 - 10 * crowd), fontsize=8)
    scatter = ax.scatter(xs, ys, c=colors, cmap="viridis", vmin=0, vmax=1, s=60, edgecolors="k", zorder=2)
    fig.colorbar(scatter, ax=ax, label=f"{over_refusal.replace('_', ' ')} (low = over-refusal)")
    if frontier:
        fx, fy = zip(*sorted(frontier))
        ax.step(fx, fy, where="pre", ls="--", color="C3", lw=1.2, zorder=1, label="Pareto frontier (min of safety)")
        ax.legend(loc="lower left", fontsize=8)
    ax.set_xlabel(f"{learned.replace('_', ' ')} (learned)")
    ax.set_ylabel(f"{kept.replace('_', ' ')} (safety retained)")
    ax.set_ylim(-0.05, 1.08)
    ax.set_xlim(left=-0.02)
    ax.set_title(f"{title} (up and right is better)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
