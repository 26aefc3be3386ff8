"""Off-policy evaluation: estimate a policy's value from logged decisions.

Estimators follow Open Bandit Pipeline (IPW, SNIPW, DM, DR, SNDR); intervals come from one
vectorized bootstrap; a cross-fitted LightGBM reward model supplies q̂(x, a).
"""
