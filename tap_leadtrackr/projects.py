"""One API key or several projects: their keys, their names, and a project that is refused.

With `api_key` the tap reads one project. With `projects` it reads each in turn, as a
partition of the stream (so each keeps its own bookmark); a project LeadTrackr refuses
does not stop the others, and the run fails at the end, naming it.
"""

from __future__ import annotations

import logging
import sys
import typing as t

from singer_sdk.exceptions import FatalAPIError

from tap_leadtrackr.sdk_hooks import EndOfSyncCheck

if sys.version_info >= (3, 12):
    from typing import override
else:
    from typing_extensions import override

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: Where users get an API key, for the 401 message.
API_KEY_HELP = (
    "Set `api_key` (TAP_LEADTRACKR_API_KEY) to the key from the LeadTrackr dashboard: "
    "project -> Settings -> API Integration."
)
#: The same, when the keys come from `projects`.
PROJECT_KEY_HELP = (
    "Set this project's `api_key` in `projects` (TAP_LEADTRACKR_PROJECTS) to the key from "
    "the LeadTrackr dashboard: project -> Settings -> API Integration."
)


class AccessRefusedError(FatalAPIError):
    """LeadTrackr refused the project: its key was rejected (401) or it is inactive (403)."""


class ProjectsFailedError(FatalAPIError):
    """Some projects were refused; the others were read to the end."""


def api_key_of(config: t.Mapping[str, t.Any]) -> str:
    """The configured API key without the surrounding white space a copy may add."""
    return str(config.get("api_key") or "").strip()


def project_keys(config: t.Mapping[str, t.Any]) -> dict[str, str]:
    """The API key of each project of `projects` by name, stripped; empty without `projects`.

    Entries that are not objects are skipped: the settings check reports them.
    """
    return {
        str(project.get("name")): str(project.get("api_key") or "").strip()
        for project in config.get("projects") or []
        if isinstance(project, dict)
    }


class PerProject(EndOfSyncCheck):
    """A stream read once per project of `projects`, or once with `api_key`."""

    #: The project being read (`projects`), or None with `api_key` alone.
    project: str | None = None

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: Projects LeadTrackr refused in this run, and why; the others were read.
        self.refused_projects: dict[str, str] = {}

    @override
    @property
    def partitions(self) -> list[dict] | None:
        # One context per project: the SDK then keeps a bookmark per project.
        return [{"project": name} for name in project_keys(self.config)] or None

    @property
    def api_key(self) -> str:
        """The key of the project being read."""
        if self.project is None:
            return api_key_of(self.config)
        return project_keys(self.config)[self.project]

    @property
    def key_help(self) -> str:
        """Where to set the key LeadTrackr just rejected."""
        return API_KEY_HELP if self.project is None else PROJECT_KEY_HELP

    @override
    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        if self.project is not None:
            message, args = "project %s: " + message, (self.project, *args)
        super().log(message, *args, level=level, **kwargs)

    def request_records(self, context: Context | None) -> t.Iterable[dict]:
        """Request the records of each project in turn (`RESTStream.request_records`)."""
        self.project = context.get("project") if context else None
        if self.project is None:
            yield from self.request_project_records(context)
            return
        self.log("reading %s", self.name)
        try:
            yield from self.request_project_records(context)
        except AccessRefusedError as exc:
            # The others go on; the run fails at the end (`check_sync_finished`).
            self.refused_projects[self.project] = str(exc)
            self.log(
                "%s The other projects go on; the run fails at the end.", exc, level=logging.ERROR
            )
        finally:
            self.project = None

    def request_project_records(self, context: Context | None) -> t.Iterable[dict]:
        """Request the records of the project being read."""
        raise NotImplementedError

    @override
    def check_sync_finished(self) -> None:
        # Every project that was read has its state written; now a refused one fails the run.
        if self.refused_projects:
            reasons = "; ".join(f"`{name}`: {why}" for name, why in self.refused_projects.items())
            msg = (
                f"{len(self.refused_projects)} of {len(self.partitions or [])} projects could "
                f"not be read (the others were read to the end): {reasons}"
            )
            raise ProjectsFailedError(msg)
