"""Online mode: retrofitting from human feedback (comparisons), with a web page.

* :mod:`~afterlearner.online.session`: :class:`FeedbackSession` (propose k candidates, take answers,
  tell a comparison-based optimizer; anytime; persistent and resumable).
* :mod:`~afterlearner.online.feedback`: the answer kinds and how each becomes tells.
* :mod:`~afterlearner.online.render`: PNG / WAV / text renderings.
* :mod:`~afterlearner.online.task`: :class:`FeedbackTask`, what a task file's factory returns.
* :mod:`~afterlearner.online.server`: the FastAPI page (``afterlearner feedback serve``).
* :mod:`~afterlearner.online.simulated`: a simulated user with a hidden target, answering by comparisons.

The demo (``afterlearner feedback demo``: steer the repository's digit generator) and its measurement
against random proposals live with the example models, in :mod:`afterlearner.experiments.digits`.

Documentation: docs/online.md.
"""

from afterlearner.online.feedback import (
    CURRENT,
    Best,
    Feedback,
    FeedbackError,
    NoneBetter,
    Pair,
    Ranking,
    Tells,
)
from afterlearner.online.render import Rendering, image, sound, text
from afterlearner.online.session import (
    Candidate,
    FeedbackSession,
    Progress,
    Proposal,
    SessionError,
    SessionFinished,
    StaleProposal,
    UnknownProposal,
)
from afterlearner.online.task import FeedbackTask, load_feedback_task

__all__ = [
    "CURRENT",
    "Best",
    "Candidate",
    "Feedback",
    "FeedbackError",
    "FeedbackSession",
    "FeedbackTask",
    "NoneBetter",
    "Pair",
    "Progress",
    "Proposal",
    "Ranking",
    "Rendering",
    "SessionError",
    "SessionFinished",
    "StaleProposal",
    "Tells",
    "UnknownProposal",
    "image",
    "load_feedback_task",
    "sound",
    "text",
]
