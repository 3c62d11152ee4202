"""A component as it runs inside its container: the directories it gets, the prelude that
writes its config files and drops to its user, and its command, environment and files
with the placeholders meaning what they mean in there (``${host}`` 0.0.0.0, ``${dir}``
/harness/run, ``${data_dir}`` /harness/data, ``${addr:X}`` X's name and inside port, the
rest as on the host), a listen address written as loopback rewritten to 0.0.0.0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from harness.backends.containers.layout import HOST
from harness.errors import ConfigError
from harness.sessions import LABEL
from harness.topology import Component, RenderContext, Topology, render, render_file

__all__ = [
    "DATA_DIR",
    "MAX_FILE_BYTES",
    "PRELUDE",
    "PRELUDE_SCRIPT",
    "RUN_DIR",
    "InsideView",
    "unloopback",
]

RUN_DIR = "/harness/run"
DATA_DIR = "/harness/data"
# placeholders that mean something else inside a container (not after `$`: `$${` is literal)
_PLACEHOLDERS = re.compile(r"(?<!\$)\$\{(host|dir|data_dir)\}|(?<!\$)\$\{(addr):([^}]+)\}")
MAX_FILE_BYTES = 120 * 1024  # a config file travels in one environment variable

# Runs as root: makes the run and data directories, writes the component's config files
# (HARNESS_FILES names them, HARNESS_FILE_1.. hold their text), hands the directories to
# the component's user, then execs the component as that user (``exec`` keeps the pid;
# docker-init is PID 1).
PRELUDE_SCRIPT = """
mkdir -p /harness/run
[ -n "$HARNESS_DATA" ] && mkdir -p /harness/data
n=0
for f in $HARNESS_FILES; do
  n=$((n + 1))
  eval "printf '%s' \\"\\$HARNESS_FILE_$n\\"" > "/harness/run/$f"
done
if [ -n "$HARNESS_USER" ]; then
  id -u "$HARNESS_USER" >/dev/null 2>&1 || HARNESS_USER=nobody
  chown -R "$HARNESS_USER" /harness/run
  if [ -n "$HARNESS_DATA" ] && [ -z "$(ls -A /harness/data)" ]; then
    chown "$HARNESS_USER" /harness/data && chmod 700 /harness/data
  fi
  exec setpriv --reuid="$HARNESS_USER" --regid="$(id -g "$HARNESS_USER")" --init-groups -- "$@"
fi
exec "$@"
"""
PRELUDE = ["sh", "-c", PRELUDE_SCRIPT.strip(), "harness-start"]


def unloopback(arg: str) -> str:
    """``127.0.0.1`` as a listen address, in a container, becomes 0.0.0.0 (see module doc)."""
    if arg == HOST:
        return "0.0.0.0"
    if arg.endswith("=" + HOST):
        return arg[: -len(HOST)] + "0.0.0.0"
    return arg


@dataclass(frozen=True)
class InsideView:
    """How one run's components read inside their containers."""

    topology: Topology
    ctx: RenderContext  # the run's rendering context, with inside ports and directories
    ports: Mapping[str, int]  # component -> its port inside its container
    session: str  # the run's session id (the component's environment carries it)

    def render(self, text: str, comp: str) -> str:
        """A placeholder as the component sees it from inside its container."""

        def inside(m: re.Match[str]) -> str:
            kind, arg = m.group(1) or m.group(2), m.group(3)
            if kind == "addr":
                group = self.topology.group(arg)
                member = group[0].name if group else arg
                return f"{member}:{self.ports[member]}"
            return {"host": "0.0.0.0", "dir": RUN_DIR, "data_dir": DATA_DIR}[kind]

        return render(_PLACEHOLDERS.sub(inside, text), self.ctx, comp)

    def command(self, comp: Component) -> list[str]:
        return [unloopback(self.render(t, comp.name)) for t in comp.command]

    def env(self, comp: Component) -> dict[str, str]:
        env = {k: self.render(v, comp.name) for k, v in comp.env.items()}
        env.update({LABEL: self.session, "HARNESS_COMPONENT": comp.name})
        env["HARNESS_USER"] = comp.user or ""
        env["HARNESS_DATA"] = "1" if comp.data_dir else ""
        env["HARNESS_FILES"] = " ".join(t.name for t in comp.files)
        for i, tmpl in enumerate(comp.files, 1):
            text = render_file(tmpl, self.ctx, comp.name, lambda t: self.render(t, comp.name))
            if len(text.encode()) > MAX_FILE_BYTES:
                raise ConfigError(
                    self.topology.source,
                    f"components.{comp.group}.files.{tmpl.name}",
                    f"{len(text.encode()):,} bytes rendered",
                    f"at most {MAX_FILE_BYTES:,} bytes on the containers backend",
                    "a config file is passed to the container in an environment variable",
                )
            env[f"HARNESS_FILE_{i}"] = text
        return env
