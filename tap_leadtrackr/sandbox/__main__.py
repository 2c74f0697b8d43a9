"""`leadtrackr-sandbox`: run a local LeadTrackr API until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import fields
from types import FrameType
from typing import get_type_hints

from tap_leadtrackr.sandbox.aging import Aging, age_rounds
from tap_leadtrackr.sandbox.data import generate_leads
from tap_leadtrackr.sandbox.faults import SCRIPTED_FAULTS, Faults
from tap_leadtrackr.sandbox.project import Project
from tap_leadtrackr.sandbox.server import DEFAULT_API_KEY, Sandbox, project_key


def _script(value: str) -> dict[int, str]:
    """Parse `3=429,7=reset` into {3: "429", 7: "reset"}."""
    script = {}
    for item in filter(None, value.split(",")):
        number, separator, fault = item.partition("=")
        if not separator or not number.strip().isdigit() or fault.strip() not in SCRIPTED_FAULTS:
            raise argparse.ArgumentTypeError(
                f"{item!r} is not N=FAULT with FAULT one of {', '.join(sorted(SCRIPTED_FAULTS))}"
            )
        script[int(number)] = fault.strip()
    return script


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


def _numbers(value: str) -> set[int]:
    """Parse `2,3` into {2, 3}."""
    try:
        return {int(item) for item in value.split(",") if item.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not numbers like 2,3") from None


def _optional_text(value: str) -> str | None:
    return None if value.lower() == "none" else value


_METAVARS = {
    "_ms": "MS",
    "_seconds": "SECONDS",
    "_count": "N",
    "_status": "STATUS",
    "_every": "K",
    "_request": "K",
}
"""Placeholders in --help for fault options, by the end of their names."""


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser: server options, then one option per fault."""
    parser = argparse.ArgumentParser(
        prog="leadtrackr-sandbox",
        description="Serve a local LeadTrackr API (getLeads, getLead) with generated leads.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8787,
        help="port to bind, 0 for any free one (default: %(default)s)",
    )
    parser.add_argument(
        "--leads", type=_count, default=1000, help="leads to generate (default: %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the generated leads (default: %(default)s)"
    )
    parser.add_argument(
        "--api-key", default=DEFAULT_API_KEY, help="the accepted X-API-Key (default: %(default)s)"
    )
    parser.add_argument(
        "--inactive", action="store_true", help="answer 403 as for an inactive subscription"
    )
    parser.add_argument(
        "--projects",
        type=_count,
        default=1,
        metavar="N",
        help="serve N projects, each of --leads leads with ids from 1 (so ids overlap); "
        "project K answers the key API_KEY-K (project 1 also API_KEY) and its leads come "
        "from seed SEED+K-1 (default: %(default)s)",
    )
    parser.add_argument(
        "--inactive-projects",
        type=_numbers,
        default=set(),
        metavar="K,...",
        help="answer 403 for these projects, as for an inactive subscription, e.g. 2,3",
    )
    aging = Aging()
    parser.add_argument(
        "--aged",
        type=_count,
        default=0,
        metavar="ROUNDS",
        help="serve every project as it is ROUNDS rounds later; each round rates "
        f"{aging.recent_ratings} leads of the last {aging.recent_days} days and "
        f"{aging.old_ratings} older than {aging.old_days} days (status and price), deletes "
        f"{aging.deletions} and adds {aging.new_leads}; round K is always the same, so "
        "restarting with --aged 1, 2, ... ages the project between syncs (default: %(default)s)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    parser.add_argument(
        "--bulk-ties",
        type=_count,
        default=0,
        metavar="SIZE",
        help="make SIZE generated leads in the middle share one createdAt millisecond,"
        " as a bulk import does (default: %(default)s)",
    )
    group = parser.add_argument_group("faults (all off by default)")
    defaults = Faults()
    types = get_type_hints(Faults)
    for spec in fields(Faults):
        if spec.name == "script":
            continue
        option = f"--{spec.name.replace('_', '-')}"
        default = getattr(defaults, spec.name)
        help = f"{spec.metadata['help']} (default: {'none' if default is None else default})"
        kind = types[spec.name]
        if kind is bool:
            group.add_argument(option, action="store_true", help=help)
            continue
        choices = spec.metadata.get("choices")
        if choices is not None:
            metavar = "{" + ",".join("none" if c is None else c for c in choices) + "}"
        else:
            metavar = next(
                (metavar for suffix, metavar in _METAVARS.items() if spec.name.endswith(suffix)),
                "VALUE",
            )
        group.add_argument(
            option,
            type=kind if kind in (int, float) else _optional_text,
            default=default,
            choices=choices,
            metavar=metavar,
            help=help,
        )
    group.add_argument(
        "--script",
        type=_script,
        default={},
        help=f"faults by request number, e.g. 3=429,7=reset ({', '.join(sorted(SCRIPTED_FAULTS))})",
    )
    return parser


def faults_from(options: argparse.Namespace) -> Faults:
    """Return the `Faults` that parsed command-line options ask for."""
    return Faults(**{spec.name: getattr(options, spec.name) for spec in fields(Faults)})


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until SIGINT or SIGTERM, then exit 0 (1 if the port cannot be bound)."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.bulk_ties > options.leads:
        parser.error(f"--bulk-ties {options.bulk_ties} is more than --leads {options.leads}")
    if unknown := sorted(options.inactive_projects - set(range(1, options.projects + 1))):
        parser.error(f"--inactive-projects names no project of --projects: {unknown}")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before the leads are generated, so an early SIGTERM still exits cleanly.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    faults = faults_from(options)
    leads = generate_leads(options.leads, options.seed, bulk_ties=options.bulk_ties)
    inactive = options.inactive_projects
    project = Project(leads, active=not (options.inactive or 1 in inactive))
    projects = {}
    if options.projects > 1:
        projects[project_key(options.api_key, 1)] = project
        for number in range(2, options.projects + 1):
            more = generate_leads(options.leads, options.seed + number - 1)
            projects[project_key(options.api_key, number)] = Project(
                more, active=number not in inactive
            )
    # Project 1 is also in `projects` when there are several: each ages once.
    served = {id(each): each for each in (project, *projects.values())}.values()
    aged = [change for each in served for change in age_rounds(each, options.aged)]
    sandbox = Sandbox(
        project,
        api_key=options.api_key,
        faults=faults,
        host=options.host,
        port=options.port,
        verbose=options.verbose,
        projects=projects,
    )
    if stop.is_set():
        return 0
    try:
        sandbox.start()
    except OSError as error:
        print(
            f"leadtrackr-sandbox: cannot listen on {options.host}:{options.port}: {error}",
            file=sys.stderr,
        )
        return 1
    try:
        url, count, key = sandbox.url, len(project), sandbox.api_key
        print(f"LeadTrackr sandbox on {url} with {count} leads; API key: {key}", flush=True)
        if aged:
            print(
                f"  aged {options.aged} round(s): {sum(len(c.rated) for c in aged)} leads rated, "
                f"{sum(len(c.deleted) for c in aged)} deleted, "
                f"{sum(len(c.added) for c in aged)} added",
                flush=True,
            )
        for other_key, other in sandbox.projects.items():
            state = "" if other.active else " (inactive: answers 403)"
            print(f"  project with {len(other)} leads; API key: {other_key}{state}", flush=True)
        # A timeout keeps the main thread returning to Python, where signal handlers run.
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
