"""The learning loop (design.md, "The learning loop"): ratings and corrections, experiences
and replay, lessons, prompt versions and offline refinement, export and forgetting.

One module, one job:

* :mod:`~agent_core.learning.feedback` — ratings and corrections with history;
* :mod:`~agent_core.learning.slots`, :mod:`~agent_core.learning.checks`,
  :mod:`~agent_core.learning.experiences` — scripts, check functions, workflows;
* :mod:`~agent_core.learning.replay` — exact replay and experience replay plans;
* :mod:`~agent_core.learning.memory` — what the agent recalls before a run;
* :mod:`~agent_core.learning.lessons` — lessons and their delta merges;
* :mod:`~agent_core.learning.versions`, :mod:`~agent_core.learning.evaluation`,
  :mod:`~agent_core.learning.refine` — prompt versions, scoring, the gate, scheduling;
* :mod:`~agent_core.learning.export`, :mod:`~agent_core.learning.forget`;
* :mod:`~agent_core.learning.loop` — :class:`Learning`, all of it as one service.
"""

from agent_core.learning.loop import Learning

__all__ = ["Learning"]
