"""A local LeadTrackr API for tests, the demo and users without an API key.

`Sandbox` serves a `Project` of leads (by default made by `generate_leads`) on a local
port, answering `/api/leads/getLeads` and `/api/leads/getLead` as the documented API does,
and injects the failures described by `Faults`. More projects, each read with its own
key (ids overlapping, any of them inactive on demand), go in `Sandbox.projects`. `age`
rates, deletes and adds leads as the days between two syncs would. Run it with
`leadtrackr-sandbox` or `python -m tap_leadtrackr.sandbox`.
"""

from tap_leadtrackr.sandbox.aging import Aged, Aging, age, age_rounds
from tap_leadtrackr.sandbox.data import generate_leads
from tap_leadtrackr.sandbox.faults import Faults
from tap_leadtrackr.sandbox.project import Project
from tap_leadtrackr.sandbox.server import DEFAULT_API_KEY, RecordedRequest, Sandbox, project_key

__all__ = [
    "DEFAULT_API_KEY",
    "Aged",
    "Aging",
    "Faults",
    "Project",
    "RecordedRequest",
    "Sandbox",
    "age",
    "age_rounds",
    "generate_leads",
    "project_key",
]
