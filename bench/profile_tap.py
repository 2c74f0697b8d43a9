"""Where the tap's CPU goes on a full sync: cProfile of `TapLeadTrackr(config=...).sync_all()`.

Run: .venv/bin/python bench/profile_tap.py [--leads 20000] [--top 25] [--save FILE.pstats]
     [--py-spy PATH/TO/py-spy]

The sandbox serves the leads from a process of its own (`bench/sandbox_process.py`); the
tap runs in this process with stdout and stderr sent to /dev/null during the sync. The
report gives the sync's CPU without and with the profiler (cProfile makes small Python
calls look dearer than they are), the inclusive share of each stage of the per-lead path,
then the functions with the most time of their own. With `--py-spy`, the same stages
are also measured by sampling unprofiled syncs, which does not inflate small calls.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shlex
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

from sandbox_process import SandboxProcess

from bench import write_into

#: The report's place in BENCHMARKS.md: `--write` replaces what lies between these.
BEGIN, END = "<!-- profile:begin -->", "<!-- profile:end -->"

#: Stages of the per-lead path: (label, file the function is in, function name).
#: Indented labels are parts of the stage above them.
STAGES: list[tuple[str, str, str]] = [
    ("Stream.sync (the whole leads sync)", "singer_sdk/streams/core.py", "sync"),
    (
        "  build requests: LeadTrackrStream.build_request",
        "tap_leadtrackr/client.py",
        "build_request",
    ),
    ("  fetch pages: Sender.send", "tap_leadtrackr/sending.py", "send"),
    ("    requests Session.send (HTTP round trip)", "requests/sessions.py", "send"),
    ("      resolve_proxies (reads os.environ)", "requests/utils.py", "resolve_proxies"),
    ("    decode_page (msgspec decode)", "tap_leadtrackr/client.py", "decode_page"),
    ("  check: LeadsStream.check_page", "tap_leadtrackr/streams.py", "check_page"),
    ("    canonical_timestamp", "tap_leadtrackr/timestamps.py", "canonical_timestamp"),
    ("  keyset: Cursor.take", "tap_leadtrackr/paging/pages.py", "take"),
    ("  shape: LeadsStream.prepare_records", "tap_leadtrackr/streams.py", "prepare_records"),
    ("    LeadsStream.shape", "tap_leadtrackr/streams.py", "shape"),
    ("  Stream._check_max_record_limit", "singer_sdk/streams/core.py", "_check_max_record_limit"),
    ("  Stream.post_process", "singer_sdk/streams/core.py", "post_process"),
    ("  Stream._process_record", "singer_sdk/streams/core.py", "_process_record"),
    ("  Stream._write_record_message", "singer_sdk/streams/core.py", "_write_record_message"),
    (
        "    _generate_record_messages (sdk_hooks)",
        "tap_leadtrackr/sdk_hooks.py",
        "_generate_record_messages",
    ),
    (
        "      pop_deselected_record_properties",
        "singer_sdk/helpers/_catalog.py",
        "pop_deselected_record_properties",
    ),
    (
        "      conform_record_data_types",
        "singer_sdk/helpers/_typing.py",
        "conform_record_data_types",
    ),
    ("      stream map transform", "singer_sdk/mapper.py", "transform"),
    ("      datetime.now (time_extracted)", "~", "<built-in method now>"),
    (
        "      RecordMessage.__post_init__",
        "singer_sdk/singerlib/encoding/simple.py",
        "__post_init__",
    ),
    ("    Tap.write_message", "singer_sdk/plugin_base.py", "write_message"),
    ("      RecordMessage.to_dict", "singer_sdk/singerlib/encoding/simple.py", "to_dict"),
    ("      serialize_jsonl (msgspec encode)", "singer_sdk/contrib/msgspec.py", "serialize_jsonl"),
    (
        "      stdout flush, once per message",
        "~",
        "<method 'flush' of '_io.TextIOWrapper' objects>",
    ),
    (
        "  PageCheckpoints._increment_stream_state",
        "tap_leadtrackr/sdk_hooks.py",
        "_increment_stream_state",
    ),
    (
        "  LeadTrackrStream.write_state_message (per page)",
        "tap_leadtrackr/client.py",
        "write_state_message",
    ),
    ("  record counter increment (metrics)", "singer_sdk/metrics.py", "increment"),
    ("  logging (Logger._log)", "logging/__init__.py", "_log"),
]

#: A file name is shown from after the first of these it contains.
TRIM = (
    "/site-packages/",
    f"/lib/python{sys.version_info.major}.{sys.version_info.minor}/",
    f"{Path(__file__).resolve().parent.parent}/",
)


@contextlib.contextmanager
def silenced() -> t.Iterator[None]:
    """Send file descriptors 1 and 2 to /dev/null (the tap writes Singer messages to 1)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def sync(config: dict[str, t.Any], profiler: cProfile.Profile | None = None) -> float:
    """One full sync in this process; return its CPU seconds (this process, all threads)."""
    from tap_leadtrackr.tap import TapLeadTrackr

    tap = TapLeadTrackr(config=config)
    with silenced():
        started = time.process_time()
        if profiler is None:
            tap.sync_all()
        else:
            profiler.runcall(tap.sync_all)
        return time.process_time() - started


def short(filename: str) -> str:
    for marker in TRIM:
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def cprofile_stages(stats: pstats.Stats) -> tuple[float, dict[str, tuple[int, float]]]:
    """Tap.sync_all's profiled seconds, and (calls, inclusive seconds) of each stage."""
    # {(file, line, function): (primitive calls, calls, own s, inclusive s, callers)}
    entries = stats.stats  # type: ignore[attr-defined]
    total = max(ct for (_, _, name), (_, _, _, ct, _) in entries.items() if name == "sync_all")
    stages = {}
    for label, file, name in STAGES:
        matches = [
            (calls, cumulative)
            for (path, _, function), (_, calls, _, cumulative, _) in entries.items()
            if function == name and (path.endswith(file) or (file == "~" and path == "~"))
        ]
        if matches:
            stages[label] = (sum(c for c, _ in matches), sum(s for _, s in matches))
    return total, stages


def sampled_stages(raw: Path) -> tuple[int, dict[str, float]]:
    """Samples inside Tap.sync_all in py-spy's raw output, and each stage's share of them.

    A raw line is `frame;frame;... COUNT`, a frame `Qualified.name (file.py:line)`; idle
    samples (waiting on the socket) are not recorded, so shares are of CPU.
    """
    total, hits = 0, dict.fromkeys((label for label, _, _ in STAGES), 0)
    wanted = [(label, file, f".{name} (", f"{name} (") for label, file, name in STAGES]
    for line in raw.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any(frame.startswith("Tap.sync_all (") for frame in frames):
            continue
        total += int(count)
        for label, file, qualified, bare in wanted:
            if any(
                (frame.startswith(bare) or qualified in frame) and f"{file}:" in frame
                for frame in frames
            ):
                hits[label] += int(count)
    return total, {label: hit / total for label, hit in hits.items() if total}


def report(
    stats: pstats.Stats,
    leads: int,
    plain: float,
    profiled: float,
    top: int,
    sampled: tuple[int, dict[str, float]] | None,
) -> str:
    total, stages = cprofile_stages(stats)
    width = max(len(label) for label, _, _ in STAGES)
    lines = [
        f"Full sync of {leads:,} leads in-process (stdout and stderr to /dev/null)",
        f"  CPU without profiler: {plain:.2f} s ({plain / leads * 1e6:.1f} us per lead)",
        f"  CPU with cProfile:    {profiled:.2f} s (Tap.sync_all as the profiler counts it: "
        f"{total:.2f} s)",
        "",
        "Inclusive CPU of each stage, as a share of Tap.sync_all"
        + (f" (py-spy: {sampled[0]:,} samples)" if sampled else ""),
        f"  {'stage':<{width}} {'calls':>9} {'cProfile s':>10} {'cProfile':>8}"
        + (f" {'py-spy':>7}" if sampled else ""),
    ]
    for label, _, _ in STAGES:
        calls, seconds = stages.get(label, (0, 0.0))
        line = f"  {label:<{width}} {calls:>9,} {seconds:>10.3f} {seconds / total:>8.1%}"
        if sampled:
            line += f" {sampled[1][label]:>7.1%}" if sampled[1][label] else f" {'-':>7}"
        lines.append(line)
    entries = stats.stats  # type: ignore[attr-defined]
    lines += [
        "",
        f"Top {top} functions by own time under cProfile (tottime)",
        f"  {'own s':>7} {'share':>6} {'calls':>9}  function",
    ]
    ranked = sorted(entries.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (path, line_number, name), (_, calls, own, _, _) in ranked:
        where = name if path == "~" else f"{short(path)}:{line_number} {name}"
        lines.append(f"  {own:>7.3f} {own / total:>6.1%} {calls:>9,}  {where}")
    return "\n".join(lines) + "\n"


def run_py_spy(py_spy: str, leads: int, seed: int, runs: int) -> tuple[int, dict[str, float]]:
    """Sample `runs` unprofiled syncs in a child process with py-spy."""
    with tempfile.TemporaryDirectory(prefix="profile-") as workdir:
        raw = Path(workdir) / "py-spy.txt"
        child = [sys.executable, str(Path(__file__).resolve()), "--leads", str(leads)]
        child += ["--seed", str(seed), "--plain-runs", str(runs)]
        subprocess.run(
            [py_spy, "record", "--rate", "500", "--format", "raw", "-o", str(raw), "--", *child],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return sampled_stages(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Profile the tap's CPU on a full sync.")
    parser.add_argument("--leads", type=int, default=20_000, help="leads to sync")
    parser.add_argument("--seed", type=int, default=1, help="seed of the sandbox's leads")
    parser.add_argument("--top", type=int, default=25, help="functions to list by own time")
    parser.add_argument("--save", type=Path, help="also save the raw profile (pstats) here")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="also sample unprofiled syncs with this py-spy (`pip install py-spy`)",
    )
    parser.add_argument("--runs", type=int, default=5, help="syncs py-spy samples")
    parser.add_argument(
        "--write",
        type=Path,
        metavar="FILE",
        help=f"also put the report between {BEGIN} and {END} in FILE (e.g. BENCHMARKS.md)",
    )
    parser.add_argument("--plain-runs", type=int, help=argparse.SUPPRESS)  # py-spy's child
    options = parser.parse_args(argv)
    with SandboxProcess(options.seed) as sandbox:
        sandbox.load(options.leads)
        config = {"api_url": sandbox.url, "api_key": sandbox.api_key}
        # Warms the sandbox's cache of encoded leads and this process's imports: not measured.
        sync(config)
        if options.plain_runs:
            for _ in range(options.plain_runs):
                sync(config)
            return 0
        plain = sync(config)
        # CPU time, not the default wall clock: waiting for the sandbox is not the tap's cost.
        profiler = cProfile.Profile(time.process_time)
        profiled = sync(config, profiler)
    sampled = None
    if options.py_spy:
        sampled = run_py_spy(options.py_spy, options.leads, options.seed, options.runs)
    stats = pstats.Stats(profiler)
    if options.save:
        stats.dump_stats(options.save)
    text = report(stats, options.leads, plain, profiled, options.top, sampled)
    if options.write:
        command = shlex.join([".venv/bin/python", "bench/profile_tap.py", *sys.argv[1:]])
        write_into(options.write, f"Command: `{command}`\n\n```text\n{text}```\n", BEGIN, END)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
