"""The planner's one error: a request or input it cannot answer.

Its message names the field (``--duration``, ``--by``, a site) and why, so
the CLI prints it as is and ``/api/plan`` returns it as a 400 body.
"""

from __future__ import annotations


class PlanError(ValueError):
    """A request or input the planner cannot answer (says which field and why)."""
