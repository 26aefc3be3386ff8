"""Qini and uplift curves with matplotlib: the model's, the perfect and the random ones.

>>> import numpy as np, matplotlib
>>> matplotlib.use("Agg")
>>> rng = np.random.default_rng(0)
>>> y, t, s = rng.integers(0, 2, 200), rng.integers(0, 2, 200), rng.random(200)
>>> fig = plot_curves(y, s, t)
>>> [ax.get_title() for ax in fig.axes]
['Qini curve (normalized AUC 0.069)', 'Uplift curve (normalized AUC 0.115)']

Reference: scikit-uplift's ``plot_qini_curve`` and ``plot_uplift_curve``
(sklift/viz/base.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.uplift.metrics import (
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc_score,
    qini_curve,
    uplift_auc_score,
    uplift_curve,
)


def _draw(ax, actual, perfect, title: str) -> None:
    ax.plot(*actual, label="model")
    ax.plot(*perfect, label="perfect", linestyle="--")
    ax.plot([0, actual[0][-1]], [0, actual[1][-1]], label="random", linestyle=":")
    ax.set_xlabel("rows targeted")
    ax.set_title(title)
    ax.legend()


def plot_curves(y_true, uplift, treatment, path: Path | None = None):
    """A figure with the Qini and uplift curves; saved to ``path`` when given."""
    from matplotlib.figure import Figure

    y, s, t = np.asarray(y_true), np.asarray(uplift), np.asarray(treatment)
    fig = Figure(figsize=(11, 4.5))
    qini_ax, uplift_ax = fig.subplots(1, 2)
    _draw(
        qini_ax,
        qini_curve(y, s, t),
        perfect_qini_curve(y, t),
        f"Qini curve (normalized AUC {qini_auc_score(y, s, t):.3f})",
    )
    qini_ax.set_ylabel("incremental responders")
    _draw(
        uplift_ax,
        uplift_curve(y, s, t),
        perfect_uplift_curve(y, t),
        f"Uplift curve (normalized AUC {uplift_auc_score(y, s, t):.3f})",
    )
    uplift_ax.set_ylabel("uplift × rows")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
