"""Uplift modelling: S-, T- and X-learners on LightGBM and scikit-uplift's metrics."""
