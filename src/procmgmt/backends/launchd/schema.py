"""The launchd.plist(5) keys procmgmt knows, with their types, and a checker.

launchd reads a plist with whatever keys it contains and ignores the ones it
does not know (silently, or with a line in the system log), and a key of
the wrong type is ignored as well: a ``<string>true</string>`` RunAtLoad
does nothing. Neither mistake can be caught on Linux by launchd itself, so
every generated plist (overrides included) is checked here: an unknown key
is a *warning* (it may be a key newer than this table), a known key of the
wrong type is an *error*.

Types follow launchd.plist(5) (macOS 10.10 to 14 man pages and Apple's
open-source launchd); where the page allows two forms (KeepAlive is a
boolean or a dictionary, Umask an integer or, on newer systems, a string)
both are accepted.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: A checker returns None when ``value`` has the right type, else what was expected.
Check = Callable[[Any], str | None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def string(value: Any) -> str | None:
    """A plist ``<string>``."""
    return None if isinstance(value, str) else "a string"


def boolean(value: Any) -> str | None:
    """``<true/>`` or ``<false/>``."""
    return None if isinstance(value, bool) else "a boolean"


def integer(value: Any) -> str | None:
    """An ``<integer>`` (a bool is not one, although Python thinks so)."""
    return None if _is_int(value) else "an integer"


def real(value: Any) -> str | None:
    """A ``<real>`` (an integer is accepted where a real is expected)."""
    return None if isinstance(value, float) or _is_int(value) else "a real number"


def date(value: Any) -> str | None:
    """A ``<date>``."""
    return None if isinstance(value, datetime.datetime) else "a date"


def array_of(item: Check, what: str) -> Check:
    """An ``<array>`` whose every element passes ``item``."""
    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple) or any(item(v) for v in value):
            return f"an array of {what}"
        return None
    return check


def dict_of(item: Check, what: str) -> Check:
    """A ``<dict>`` with any keys whose every value passes ``item``."""
    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping) or any(item(v) for v in value.values()):
            return f"a dictionary of {what}"
        return None
    return check


def any_dict(value: Any) -> str | None:
    """A ``<dict>`` of anything (launchd checks the contents itself)."""
    return None if isinstance(value, Mapping) else "a dictionary"


def one_of(*checks: Check) -> Check:
    """Any one of ``checks``."""
    def check(value: Any) -> str | None:
        problems = [c(value) for c in checks]
        if all(problems):
            return " or ".join(p for p in problems if p)
        return None
    return check


def record(fields: Mapping[str, Check], name: str) -> Check:
    """A ``<dict>`` with the given optional keys only (unknown keys are type errors:
    inside a known structure a typo is not a newer launchd feature)."""
    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping):
            return f"a {name} dictionary"
        for key, sub in value.items():
            if key not in fields or fields[key](sub):
                return f"a {name} dictionary (keys: {', '.join(sorted(fields))})"
        return None
    return check


_STRINGS = array_of(string, "strings")
_RESOURCE_LIMITS = record({k: integer for k in (
    "Core", "CPU", "Data", "FileSize", "MemoryLock", "NumberOfFiles",
    "NumberOfProcesses", "ResidentSetSize", "Stack")}, "resource limits")
_CALENDAR = record({k: integer for k in ("Minute", "Hour", "Day", "Weekday", "Month")},
                   "calendar interval")
_KEEP_ALIVE = one_of(boolean, record({
    "SuccessfulExit": boolean,
    "NetworkState": boolean,
    "Crashed": boolean,
    "PathState": dict_of(boolean, "booleans"),
    "OtherJobEnabled": dict_of(boolean, "booleans"),
    "AfterInitialDemand": one_of(boolean, dict_of(boolean, "booleans")),
}, "KeepAlive"))

#: Top-level keys of launchd.plist(5) and their types.
KNOWN_KEYS: dict[str, Check] = {
    "Label": string,
    "Disabled": boolean,
    "UserName": string,
    "GroupName": string,
    "InitGroups": boolean,
    "inetdCompatibility": record({"Wait": boolean}, "inetdCompatibility"),
    "LimitLoadToHosts": _STRINGS,
    "LimitLoadFromHosts": _STRINGS,
    "LimitLoadToSessionType": one_of(string, _STRINGS),
    "LimitLoadToHardware": dict_of(_STRINGS, "arrays of strings"),
    "LimitLoadFromHardware": dict_of(_STRINGS, "arrays of strings"),
    "Program": string,
    "ProgramArguments": _STRINGS,
    "BundleProgram": string,
    "EnableGlobbing": boolean,
    "EnableTransactions": boolean,
    "EnablePressuredExit": boolean,
    "OnDemand": boolean,
    "ServiceIPC": boolean,
    "KeepAlive": _KEEP_ALIVE,
    "RunAtLoad": boolean,
    "RootDirectory": string,
    "WorkingDirectory": string,
    "EnvironmentVariables": dict_of(string, "strings"),
    "Umask": one_of(integer, string),
    "TimeOut": integer,
    "ExitTimeOut": integer,
    "ThrottleInterval": integer,
    "WatchPaths": _STRINGS,
    "QueueDirectories": _STRINGS,
    "StartOnMount": boolean,
    "StartInterval": integer,
    "StartCalendarInterval": one_of(_CALENDAR, array_of(_CALENDAR, "calendar intervals")),
    "StandardInPath": string,
    "StandardOutPath": string,
    "StandardErrorPath": string,
    "Debug": boolean,
    "WaitForDebugger": boolean,
    "SoftResourceLimits": _RESOURCE_LIMITS,
    "HardResourceLimits": _RESOURCE_LIMITS,
    "Nice": integer,
    "ProcessType": string,
    "AbandonProcessGroup": boolean,
    "LowPriorityIO": boolean,
    "LowPriorityBackgroundIO": boolean,
    "MaterializeDatalessFiles": boolean,
    "LaunchOnlyOnce": boolean,
    "MachServices": dict_of(one_of(boolean, any_dict), "booleans or dictionaries"),
    "Sockets": any_dict,
    "LaunchEvents": any_dict,
    "SessionCreate": boolean,
    "LegacyTimers": boolean,
    "AssociatedBundleIdentifiers": one_of(string, _STRINGS),
}

#: Documented values of ProcessType.
PROCESS_TYPES = ("Background", "Standard", "Adaptive", "Interactive")


@dataclass
class Report:
    """Problems found in one plist."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def check_plist(plist: Mapping[str, Any]) -> Report:
    """Check a job dictionary: required keys, known keys' types, unknown keys.

    ``Label`` is required, and a program: ``Program`` or a non-empty
    ``ProgramArguments`` (launchd refuses the job otherwise).
    """
    report = Report()
    if "Label" not in plist:
        report.errors.append("Label is required")
    if "Program" not in plist and not plist.get("ProgramArguments"):
        report.errors.append("Program or a non-empty ProgramArguments is required")
    for key in sorted(plist):
        value = plist[key]
        check = KNOWN_KEYS.get(key)
        if check is None:
            report.warnings.append(f"unknown launchd key {key!r} (launchd ignores keys it "
                                   "does not know)")
            continue
        expected = check(value)
        if expected:
            report.errors.append(f"{key} must be {expected}, not {_describe(value)}")
    process_type = plist.get("ProcessType")
    if isinstance(process_type, str) and process_type not in PROCESS_TYPES:
        report.errors.append(f"ProcessType must be one of {', '.join(PROCESS_TYPES)}, "
                             f"not {process_type!r}")
    return report


def _describe(value: Any) -> str:
    """The plist type name of a value (for messages)."""
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a real ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, Mapping):
        return "a dictionary"
    if isinstance(value, Sequence):
        return "an array"
    return type(value).__name__


__all__ = ["KNOWN_KEYS", "Report", "check_plist"]
