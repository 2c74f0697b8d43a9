"""`leadtrackr-sandbox`: run a local LeadTrackr API until interrupted."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from dataclasses import fields
from types import FrameType
from typing import get_type_hints

from tap_leadtrackr.sandbox.data import generate_leads
from tap_leadtrackr.sandbox.faults import SCRIPTED_FAULTS, Faults
from tap_leadtrackr.sandbox.project import Project
from tap_leadtrackr.sandbox.server import DEFAULT_API_KEY, Sandbox


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
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    group = parser.add_argument_group("faults (all off by default)")
    defaults = Faults()
    types = get_type_hints(Faults)
    for spec in fields(Faults):
        if spec.name == "script":
            continue
        default = getattr(defaults, spec.name)
        kind = types[spec.name]
        group.add_argument(
            f"--{spec.name.replace('_', '-')}",
            type=kind if kind in (int, float) else _optional_text,
            default=default,
            metavar=next(
                (metavar for suffix, metavar in _METAVARS.items() if spec.name.endswith(suffix)),
                "VALUE",
            ),
            help=f"{spec.metadata['help']} (default: {default})",
        )
    group.add_argument(
        "--script",
        type=_script,
        default={},
        help=f"faults by request number, e.g. 3=429,7=reset ({', '.join(sorted(SCRIPTED_FAULTS))})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the sandbox until SIGINT or SIGTERM, then exit 0 (1 if the port cannot be bound)."""
    options = build_parser().parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Installed before the leads are generated, so an early SIGTERM still exits cleanly.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    faults = Faults(**{spec.name: getattr(options, spec.name) for spec in fields(Faults)})
    project = Project(generate_leads(options.leads, options.seed), active=not options.inactive)
    sandbox = Sandbox(
        project,
        api_key=options.api_key,
        faults=faults,
        host=options.host,
        port=options.port,
        verbose=options.verbose,
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
        # A timeout keeps the main thread returning to Python, where signal handlers run.
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
