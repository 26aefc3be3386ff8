"""Off-policy evaluation: estimate a policy's value from logged decisions.

Estimators follow Open Bandit Pipeline (IPW, SNIPW, DM, DR, SNDR); intervals come from one
vectorized bootstrap; a cross-fitted LightGBM reward model supplies q̂(x, a).

What is estimated is the value of a *decision policy*, intent to treat: the logged
propensity is the probability of the action the policy chose, and a governed action is
refused (consent revoked, a cap, quiet hours) or fails to deliver after that choice, by
rules that are not part of the policy. So every logged decision stays in, with its reward,
whatever was sent: dropping the refused ones would keep a subset selected after the draw
(customers without consent are not missing at random) and bias IPW and DR; re-labelling
the sent action as the logged one would pair it with a propensity it was not drawn with.
``liftgate ope`` reports beside the estimates the share of the decisions whose action was
delivered, refused, ... (:mod:`experiments.sent`), so that the gap between deciding and
sending is visible.
"""
