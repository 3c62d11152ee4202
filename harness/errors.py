"""The harness's exceptions: raised for broken setup, never for resilience violations.

Violations of an invariant are verdicts, not exceptions. These are for everything
that stops a run from starting or finishing honestly::

    HarnessError
     ├── ConfigError          a file or option is wrong: names file, key path, value, expectation
     ├── PrerequisiteError    a binary or service the harness needs is missing; says what to install
     └── ComponentError       a component failed to start or to become ready
          └── ReadinessTimeout  a probe never went green; carries the component's last log lines
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """Base class of every error the harness raises on purpose."""


class ConfigError(HarnessError):
    """A configuration file or option has a value the harness cannot use."""

    def __init__(self, source: str, key: str, value: Any, expected: str, hint: str = "") -> None:
        self.source, self.key, self.value, self.expected, self.hint = (
            source,
            key,
            value,
            expected,
            hint,
        )
        where = f"{source}: {key}" if key else source
        message = f"{where}: got {shorten(value)}, expected {expected}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


def shorten(value: Any, limit: int = 200) -> str:
    """`repr(value)` cut to about `limit` characters, saying how long it was."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}... ({len(text):,} characters)"


class PrerequisiteError(HarnessError):
    """Something the harness needs on the machine is missing."""


class ComponentError(HarnessError):
    """A component of the system under test could not be started."""

    def __init__(self, component: str, message: str, log_tail: str = "") -> None:
        self.component, self.log_tail = component, log_tail
        text = f"{component}: {message}"
        if log_tail:
            text += f"\n--- last lines of {component}'s log ---\n{log_tail}"
        super().__init__(text)


class ReadinessTimeout(ComponentError):
    """A component's readiness probe did not succeed in time."""
