"""Database loss: PostgreSQL is killed and its data directory deleted while traffic runs,
then service is recovered the way the topology allows, recording what was lost.

Recovery (the fault's heal) picks the best the system offers:

- **promote a replica** when the topology has a running standby in the group
  ``<component>-replica`` (the hardened reference system streams synchronously to one,
  so every acknowledged commit is on it: RPO 0): ``SELECT pg_promote()``, then every
  Toxiproxy proxy ``X-><component>`` is re-pointed to the replica (clients reconnect
  through the same link addresses) and the backend's endpoint for ``<component>`` is
  redirected, so final-state reads reach the new primary;
- **re-initialise** otherwise (the naive profile: no replica, no backup): a fresh data
  directory from the cached ``initdb`` template, restart, and the topology's seed.
  Everything written since the seed is gone.

Evidence counts rows of every table in ``public`` just before the loss and after
recovery (``before.<table>``, ``after.<table>``, ``lost.<table>``); the invariants
decide whether a loss is acceptable (no acknowledged scan may be lost).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import psycopg

from harness.backends import Killable, Restartable
from harness.faults import wire
from harness.faults.base import FaultError, act, need
from harness.faults.evidence import Check, Evidence
from harness.faults.process import answers, gone
from harness.topology import CLIENT

_COUNT_TIMEOUT_MS = 3000
# Row counts taken at inject, read at heal (faults are stateless values; the counts
# belong to one system's one loss): (id(system), component) -> counts.
_BEFORE: dict[tuple[int, str], dict[str, int]] = {}


@dataclass(frozen=True)
class DbLoss:
    """Kill PostgreSQL, delete its data; heal recovers by promotion or re-initialisation."""

    kind: ClassVar[str] = "db_loss"
    component: str = "postgres"

    def describe(self) -> str:
        return f"database loss of {self.component} (kill -9, data directory deleted)"

    def replicas(self, system: Any) -> list[str]:
        group = f"{self.component}-replica"
        return [c.name for c in system.topology.components if c.group == group]

    def inject(self, system: Any) -> Evidence:
        need(system, Killable, self.describe())
        name = self.component
        if not hasattr(system, "wipe_data"):
            raise FaultError(f"{self.describe()}: backend cannot wipe data")
        before = count_rows(system.endpoints.components[name].dsn)
        _BEFORE[(id(system), name)] = before
        pid = system.pid(name)

        def action() -> None:
            system.kill(name, signal.SIGKILL)
            system.wipe_data(name)

        def verify(_: None) -> list[Check]:
            checks = gone(system, name, pid)
            data = system.data_dir(name)
            checks.append(
                Check(
                    name,
                    "its data directory is deleted",
                    not os.path.exists(data),
                    time.monotonic(),
                    {"data_dir": str(data)},
                )
            )
            return checks

        evidence = act(self.describe(), "inject", action, verify)
        return _with_figures(evidence, {f"before.{t}": n for t, n in before.items()})

    def heal(self, system: Any) -> Evidence:
        standbys = [r for r in self.replicas(system) if system.is_running(r)]
        evidence = self._promote(system, standbys[0]) if standbys else self._reinitialise(system)
        before = _BEFORE.pop((id(system), self.component), {})
        return _with_figures(evidence, {f"before.{t}": n for t, n in before.items()})

    # --- recovery paths ---------------------------------------------------------------
    def _promote(self, system: Any, replica: str) -> Evidence:
        name = self.component
        ep = system.endpoints.components[replica]
        upstream = f"{ep.host}:{ep.port}"
        topo = system.topology
        links = [
            lk.name
            for lk in topo.links
            if lk.target == name
            and (lk.source == CLIENT or topo.component(lk.source).group != f"{name}-replica")
        ]

        def action() -> None:
            with psycopg.connect(ep.dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute("SELECT pg_promote(true, 30)")
            for link in links:
                system.toxiproxy.set_upstream(link, upstream)
            if hasattr(system, "redirect"):
                system.redirect(name, replica)

        def verify(_: None) -> list[Check]:
            with psycopg.connect(ep.dsn, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                recovering = row is not None and row[0]
            checks = [
                Check(
                    replica,
                    "promoted: accepts writes (pg_is_in_recovery() is false)",
                    not recovering,
                    time.monotonic(),
                )
            ]
            for link in links:
                wire.remember_password(system.endpoints.links[link].listen, ep.password)
                s = wire.bulk(system.endpoints.links[link].listen, "postgres", timeout=5.0)
                checks.append(
                    Check(
                        link,
                        f"reaches the new primary {replica} and answers a query",
                        system.toxiproxy.proxy(link)["upstream"] == upstream and s.complete,
                        time.monotonic(),
                        {"error": s.error},
                    )
                )
            return checks

        evidence = act(self.describe(), "heal", action, verify)
        after = count_rows(ep.dsn)
        return _with_figures(
            evidence,
            {
                "recovery": "promoted replica",
                "primary": replica,
                "primary_addr": upstream,
                **{f"after.{t}": n for t, n in after.items()},
            },
        )

    def _reinitialise(self, system: Any) -> Evidence:
        name = self.component
        need(system, Restartable, self.describe())
        if not hasattr(system, "reinit_data"):
            raise FaultError(f"{self.describe()}: backend cannot re-create a data directory")

        def action() -> None:
            system.reinit_data(name)
            system.restart(name)
            system.seed(getattr(system, "seed_value", 1))

        def verify(_: None) -> list[Check]:
            checks = [answers(system, name)]
            for link in system.topology.links:
                if link.target == name:
                    listen = system.endpoints.links[link.name].listen
                    wire.remember_password(listen, system.endpoints.components[name].password)
                    s = wire.bulk(listen, "postgres", 0, 0, 5.0)
                    checks.append(
                        Check(
                            link.name,
                            "answers a query",
                            s.complete,
                            time.monotonic(),
                            {"error": s.error},
                        )
                    )
            return checks

        evidence = act(self.describe(), "heal", action, verify)
        after = count_rows(system.endpoints.components[name].dsn) if evidence.took_effect else {}
        return _with_figures(
            evidence,
            {
                "recovery": "re-initialised empty and re-seeded (no replica, no backup)",
                "primary": name,
                **{f"after.{t}": n for t, n in after.items()},
            },
        )


def count_rows(url: str) -> dict[str, int]:
    """Exact row counts of the ordinary tables in schema ``public`` (empty on failure)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"SET statement_timeout = {_COUNT_TIMEOUT_MS}")
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = 'public' AND c.relkind = 'r'"
                    " AND c.relpersistence = 'p' ORDER BY 1"
                )
            ]
            counts = {}
            for t in tables:
                row = conn.execute(f'SELECT count(*) FROM public."{t}"').fetchone()
                counts[t] = int(row[0]) if row else 0
            return counts
    except psycopg.Error:
        return {}


def _with_figures(evidence: Evidence, figures: dict[str, Any]) -> Evidence:
    merged = {**evidence.figures, **figures}
    before = {k[7:]: v for k, v in merged.items() if k.startswith("before.")}
    after = {k[6:]: v for k, v in merged.items() if k.startswith("after.")}
    for table in set(before) & set(after):
        merged[f"lost.{table}"] = max(0, before[table] - after[table])
    return Evidence(
        evidence.fault,
        evidence.phase,
        evidence.started,
        evidence.actuated,
        evidence.checks,
        evidence.error,
        merged,
    )
