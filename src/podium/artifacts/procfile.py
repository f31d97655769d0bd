"""The Procfile: one ``type: command`` line per process type, as on Heroku."""

from __future__ import annotations

import re

from podium.errors import Invalid

PROCESS_TYPE = re.compile(r"[A-Za-z0-9_-]+")
"""What a process type may be called; it becomes part of program and host names."""

RELEASE = "release"
"""The one type that is not a long-running process: the command run once per release."""

_LINE = re.compile(r"(?P<type>[^:\s]+)\s*:\s*(?P<command>.*)")


def parse_procfile(text: str, *, source: str = "Procfile") -> dict[str, str]:
    """Map each process type to its command, ``release`` included when present.

    Blank lines and ``#`` comments are skipped. A line that is not ``type: command``,
    a type named twice, an empty command or a Procfile with no long-running process
    raises ``Invalid`` naming ``source`` and the line number.
    """
    processes: dict[str, str] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise Invalid(f"{source} line {number}: expected 'type: command', got {line!r}")
        kind, command = match["type"], match["command"].strip()
        if not PROCESS_TYPE.fullmatch(kind):
            raise Invalid(
                f"{source} line {number}: process type {kind!r} may only use letters, digits, '_' and '-'"
            )
        if not command:
            raise Invalid(f"{source} line {number}: process type {kind!r} has no command")
        if kind in processes:
            raise Invalid(f"{source} line {number}: process type {kind!r} is defined twice")
        processes[kind] = command
    if not any(kind != RELEASE for kind in processes):
        found = "only a release command" if processes else "no lines of the form 'type: command'"
        raise Invalid(f"{source}: no processes to run ({found})")
    return processes
