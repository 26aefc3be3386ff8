"""The one-line verdict of a drift comparison, shared by every command and the guard.

"no drift" beside three drifted columns reads as a contradiction: the line says what the
verdict is about (the dataset), how many columns drifted and where that stands against the
threshold. Importing this module is cheap (no pandas, no Evidently), so the guard's pure
verdict can use it.

>>> dataset_drift_headline(3, 15, 0.5)
'dataset drift: no — 3 of 15 columns, below the 50 % threshold'
>>> dataset_drift_headline(9, 15, 0.5)
'dataset drift: yes — 9 of 15 columns, at or above the 50 % threshold'
"""

from __future__ import annotations


def dataset_drift_headline(drifted: int, columns: int, threshold: float) -> str:
    """``drifted`` of ``columns`` columns drifted; the dataset drifts when their share is at
    least ``threshold`` (as :func:`drift.compare.compare_chunk` decides)."""
    share = drifted / columns if columns else 0.0
    verdict, where = ("yes", "at or above") if share >= threshold else ("no", "below")
    return (
        f"dataset drift: {verdict} — {drifted} of {columns} columns, "
        f"{where} the {threshold * 100:g} % threshold"
    )
