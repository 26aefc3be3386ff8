"""Uplift modelling: S-, T- and X-learners (LightGBM base models by default) and
scikit-uplift's metrics."""
