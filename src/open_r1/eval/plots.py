# Copyright 2026 The open-r1-safety authors. Licensed under the Apache License, Version 2.0.
"""The learning-vs-forgetting plot shared by the testbed comparison and the evaluation summary."""

import math
from pathlib import Path


# Benign compliance in three bands (a continuous colour bar read as "all near 1.0" when most models answer).
COMPLIANCE_BANDS = ((0.95, "C0", ">= 0.95"), (0.80, "C1", "0.80-0.95"), (-math.inf, "C3", "< 0.80"))
# Marker and size by frontier status (`open_r1.testbed.compare.frontier_status`).
MARKERS = {"frontier": ("*", 260), "tied": ("D", 70), "off": ("o", 45), None: ("o", 45)}
MAX_NAMED_POINTS = 10  # above this, only the frontier, the ties and `named` carry their names; the rest a number


def _band(value: float) -> tuple[str, str]:
    return next((color, label) for floor, color, label in COMPLIANCE_BANDS if value >= floor or math.isnan(value))


# Where a label may go around its point (offsets in points, horizontal alignment), in order of preference.
LABEL_SPOTS = [
    (7, 3, "left"),
    (7, -11, "left"),
    (-7, 3, "right"),
    (-7, -11, "right"),
    (7, 14, "left"),
    (7, -22, "left"),
]


def _place(ax, text, xy, occupied, renderer, **style):
    """Annotate `xy` with `text` at the first spot of LABEL_SPOTS whose box stays inside the axes and meets none of
    `occupied` (display boxes of the points and of the labels placed so far), else at the spot inside the axes that
    meets the fewest; returns the label's box."""
    inside = ax.get_window_extent(renderer)
    best = None

    def annotate(dx, dy, align):
        return ax.annotate(text, xy, textcoords="offset points", xytext=(dx, dy), ha=align, zorder=4, **style)

    for dx, dy, align in LABEL_SPOTS:
        label = annotate(dx, dy, align)
        box = label.get_window_extent(renderer).padded(3)  # a gap between neighbours ("8" "1", not "81")
        outside = not (inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1))
        cost = 1000 * outside + sum(box.overlaps(other) for other in occupied)
        if cost == 0:
            return box
        label.remove()
        best = min(best or (cost, dx, dy, align), (cost, dx, dy, align))
    return annotate(*best[1:]).get_window_extent(renderer)


def learning_vs_forgetting_plot(
    points: dict[str, dict[str, tuple[float, float]]],
    path: Path,
    learned: str,
    kept: tuple[str, ...],
    over_refusal: str,
    title: str,
    status: dict[str, str] | None = None,
    named: tuple[str, ...] = (),
) -> None:
    """One panel per metric of `kept` (the first: harmful requests still refused; e.g. instruction following next),
    one point per model: x = `learned` (the new skill), y = the kept metric, colour = the band of `over_refusal`
    (benign compliance; low = over-refusal). Each value is a (mean, standard error) pair; a standard error that is
    not NaN is drawn as a light error bar. `status` (name -> frontier / tied / off, on the first panel's trade-off)
    draws the frontier as stars, joined by a dashed step line in the first panel, and its ties as diamonds. With
    more than MAX_NAMED_POINTS points only the frontier, the ties and `named` are labelled in the panels; every other
    point carries a number, listed with its name beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    status = status or {}
    names = list(points)
    many = len(names) > MAX_NAMED_POINTS
    panels = len(kept)
    fig, axes = plt.subplots(
        1,
        panels + 1,
        figsize=(7 * panels + (5 if many else 0.5), 6.5 if many else 6),
        gridspec_kw={"width_ratios": [7] * panels + [5 if many else 0.5]},
    )
    *axes, key = axes
    key.axis("off")
    labelled = [n for n in names if not many or status.get(n) in ("frontier", "tied") or n in named]
    numbered = [n for n in names if n not in labelled]
    for panel, (ax, metric) in enumerate(zip(axes, kept)):
        xy = {n: (points[n][learned][0], points[n][metric][0]) for n in names}
        for name in names:
            (x, xerr), (y, yerr) = points[name][learned], points[name][metric]
            if not (math.isnan(xerr) and math.isnan(yerr)):
                ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="none", ecolor="0.8", lw=0.8, zorder=1)
            marker, size = MARKERS[status.get(name)]
            color, _ = _band(points[name][over_refusal][0])
            ax.scatter(x, y, marker=marker, s=size, c=color, edgecolors="k", linewidths=0.6, zorder=3)
        # The frontier is of (learned, min(kept, over_refusal)): its line runs through those values.
        frontier = sorted(
            (points[n][learned][0], min(points[n][metric][0], points[n][over_refusal][0]))
            for n in names
            if status.get(n) == "frontier"
        )
        if frontier and panel == 0:
            fx, fy = zip(*frontier)
            ax.step(fx, fy, where="pre", ls="--", color="k", lw=1.0, zorder=2)
        ax.set_xlabel(f"{learned.replace('_', ' ')} (learned)")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (kept)")
        ax.set_ylim(-0.05, 1.1)
        ax.set_xlim(-0.02, ax.get_xlim()[1])  # fixed now: the labels are placed against these limits
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title} (up and right is better)")
    handles = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            color=color,
            markeredgecolor="k",
            label=f"{over_refusal.replace('_', ' ')} {label}",
        )
        for _, color, label in COMPLIANCE_BANDS
    ]
    if status:
        handles += [
            Line2D(
                [],
                [],
                ls="--",
                marker="*",
                markersize=12,
                color="k",
                markerfacecolor="w",
                label="Pareto frontier (x, min of safety)",
            ),
            Line2D([], [], ls="", marker="D", color="w", markeredgecolor="k", label="tied within one s.e."),
        ]
    if many:  # below the numbered list, clear of the points
        key.legend(handles=handles, loc="lower left", fontsize=8, frameon=False)
    else:
        axes[0].legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
    fig.tight_layout()  # the layout first: labels are placed in display space
    renderer = fig.canvas.get_renderer()
    for ax, metric in zip(axes, kept):
        xy = {n: (points[n][learned][0], points[n][metric][0]) for n in names}
        centres = [ax.transData.transform(xy[n]) for n in names]
        occupied = [matplotlib.transforms.Bbox.from_bounds(px - 5, py - 5, 10, 10) for px, py in centres]
        spots: dict[tuple[float, float], list[str]] = {}  # models on one spot share one label ("a, b, c")
        for name in labelled:
            spots.setdefault(tuple(round(v, 3) for v in xy[name]), []).append(name)
        for (_, _), together in sorted(spots.items(), key=lambda item: (-item[0][1], item[0][0])):
            occupied.append(_place(ax, ", ".join(together), xy[together[0]], occupied, renderer, fontsize=8))
        for number, name in enumerate(numbered, start=1):
            occupied.append(_place(ax, str(number), xy[name], occupied, renderer, fontsize=7, color="0.3"))
    if numbered:
        listing = "\n".join(f"{number:>2}  {name}" for number, name in enumerate(numbered, start=1))
        key.text(0, 1, listing, va="top", ha="left", fontsize=7.5, family="monospace", transform=key.transAxes)
    fig.savefig(path, dpi=120)
    plt.close(fig)
