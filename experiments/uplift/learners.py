"""The uplift learners by the short name the CLI takes."""

from experiments.uplift.s_learner import SLearner
from experiments.uplift.t_learner import TLearner
from experiments.uplift.x_learner import XLearner

LEARNERS = {"s": SLearner, "t": TLearner, "x": XLearner}
