r"""Print `projects` narrowed to one project, for a run of that project alone.

    TAP_LEADTRACKR_PROJECTS="$(python3 orchestrate/one_project.py acme)" meltano run ...

Reads the list of every project (`[{"name": ..., "api_key": ...}, ...]`) from
TAP_LEADTRACKR_PROJECTS, where the keys stay: orchestrators pass project names only, and
never see, log or store a key. Exits 1, naming the project (never a key), if it is not
in the list. Needs only the Python standard library.
"""

from __future__ import annotations

import json
import os
import sys


def one_project(name: str, projects: str) -> str:
    """The JSON list of `projects` holding only the project called `name`.

    Raises:
        LookupError: no project of the list has that name, or the list is not one.

    """
    try:
        listed = json.loads(projects)
    except ValueError:
        raise LookupError("TAP_LEADTRACKR_PROJECTS is not JSON") from None
    chosen = [
        project for project in listed if isinstance(project, dict) and project.get("name") == name
    ]
    if not chosen:
        raise LookupError(f"TAP_LEADTRACKR_PROJECTS has no project named {name!r}")
    return json.dumps(chosen[:1])


def main(argv: list[str]) -> int:
    """Print the narrowed list; 1 if the project is not in it, 2 on a wrong call."""
    if len(argv) != 1:
        print("usage: one_project.py NAME", file=sys.stderr)
        return 2
    try:
        print(one_project(argv[0], os.environ.get("TAP_LEADTRACKR_PROJECTS", "[]")))
    except LookupError as error:
        print(f"one_project.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
