"""Network faults on links, through the real Toxiproxy server: toxics and links going down.

Every link of a topology is one Toxiproxy proxy named after it (``app-1->postgres``),
so a fault names a link (or a group of links, ``app->postgres``) and the toxic goes on
each proxy. Evidence is measured through the link itself with :mod:`~harness.faults.wire`
on fresh connections.

We drive Toxiproxy with :class:`harness.toxiproxy.ToxiproxyClient`, not the design card's
``toxiproxy-python``: that client keeps the server address in class attributes (one
server per process, but every harness session runs its own), has no request timeouts
(needed against the hung API below) and no way to change a proxy's upstream (database
failover).

Toxiproxy v2.12.0 behaviour handled here (read from its source and tracker):

- a new toxic reaches connections already open; removing one does too;
- toxicity is drawn per connection when its toxic chain (re)starts, so with
  ``toxicity < 1`` a pooled connection stays toxic or clean until the toxics change.
  Evidence therefore probes fresh connections until one is affected (enough that a
  clean streak has probability < 0.1%), and records how many were;
- ``reset_peer`` fires only when data flows: probes send data, and idle pooled
  connections survive until used (documented, not hidden);
- removing a ``timeout`` toxic closes the connections it was holding: heal evidence
  says so (``closed_held_connections``) because clients see errors at heal time;
- removing toxics under heavy traffic can hang the API (Shopify/toxiproxy#558): removal
  has a short timeout and retries, then recreates the proxy (same listen and upstream, no
  toxics) as a last resort;
- ``-seed`` has no effect in v2.12.0, so jitter and toxicity draws cannot be replayed:
  evidence records ``replayable: false`` for such faults.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

from harness.faults import wire
from harness.faults.base import act, resolve_links
from harness.faults.evidence import Check, Evidence
from harness.toxiproxy import ToxiproxyClient, ToxiproxyError

Stream = Literal["upstream", "downstream", "both"]
STREAMS: tuple[str, ...] = ("upstream", "downstream", "both")
_MAX_PROBES = 60
HEAL_SAMPLES = 5  # fresh-connection round trips a latency heal may take to show itself


@dataclass(frozen=True, kw_only=True)
class Toxic:
    """A Toxiproxy toxic on every link matching ``link``; subclasses add attributes."""

    kind: ClassVar[str] = ""
    link: str
    stream: Stream = "downstream"
    toxicity: float = 1.0

    # what Toxiproxy receives ------------------------------------------------------
    def attributes(self) -> dict[str, Any]:
        skip = {"link", "stream", "toxicity"}
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    def streams(self) -> tuple[str, ...]:
        return ("upstream", "downstream") if self.stream == "both" else (self.stream,)

    def toxic_name(self, stream: str) -> str:
        return f"harness-{self.kind}-{stream}-{abs(hash(self)) % 10**8:08d}"

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v}" for k, v in self.attributes().items())
        tox = f" toxicity={self.toxicity}" if self.toxicity < 1 else ""
        return f"{self.kind}({attrs}) {self.stream}{tox} on {self.link}"

    @property
    def replayable(self) -> bool:
        return self.toxicity >= 1

    # actions -----------------------------------------------------------------------
    def inject(self, system: Any) -> Evidence:
        links = resolve_links(system.topology, self.link)
        tox: ToxiproxyClient = system.toxiproxy

        def action() -> None:
            for name in links:
                for stream in self.streams():
                    tox.add_toxic(
                        name,
                        self.toxic_name(stream),
                        self.kind,
                        self.attributes(),
                        stream,
                        self.toxicity,
                    )

        def verify(_: None) -> list[Check]:
            return [self._probe_until_affected(system, name) for name in links]

        return act(self.describe(), "inject", action, verify)

    def heal(self, system: Any) -> Evidence:
        links = resolve_links(system.topology, self.link)
        tox: ToxiproxyClient = system.toxiproxy

        def action() -> None:
            for name in links:
                for stream in self.streams():
                    remove_toxic(tox, name, self.toxic_name(stream))

        def verify(_: None) -> list[Check]:
            checks = []
            for name in links:
                listed = [t["name"] for t in tox.toxics(name)]
                mine = [n for n in listed if n in {self.toxic_name(s) for s in self.streams()}]
                checks.append(
                    Check(
                        name,
                        "toxic removed from the proxy",
                        not mine,
                        time.monotonic(),
                        {"toxics_left": ",".join(listed)},
                    )
                )
                others = [n for n in listed if n not in mine]
                if others:
                    # another fault still acts on this link: the link cannot be clean yet,
                    # so only the removal of this fault's own toxic is evidence here
                    continue
                checks.append(self._healed(system, name))
            return checks

        return act(self.describe(), "heal", action, verify)

    # evidence ----------------------------------------------------------------------
    def _probe_until_affected(self, system: Any, link: str) -> Check:
        """Probe fresh connections until one shows the effect (toxicity is per connection)."""
        addr, protocol = link_address(system, link)
        tries = 1 if self.toxicity >= 1 else _probes_for(self.toxicity)
        affected, last = 0, {}
        probes = 0
        for _ in range(tries):
            probes += 1
            hit, figures = self.probe(addr, protocol)
            last = figures
            if hit:
                affected += 1
                break
        figures = {**last, "probes": probes, "affected": affected, "replayable": self.replayable}
        return Check(link, self.expectation(), affected > 0, time.monotonic(), figures)

    def _healed(self, system: Any, link: str) -> Check:
        addr, protocol = link_address(system, link)
        sample = wire.ping(addr, protocol, timeout=2.0)
        return Check(
            link,
            "a fresh connection answers promptly",
            sample.complete and sample.seconds < 1.0,
            time.monotonic(),
            {"round_trip_ms": sample.seconds * 1000, "error": sample.error},
        )

    def expectation(self) -> str:
        raise NotImplementedError

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        """One fresh-connection measurement: (effect seen, figures)."""
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Latency(Toxic):
    """Delay every data chunk by ``latency`` ms ± ``jitter`` ms."""

    kind: ClassVar[str] = "latency"
    latency: int
    jitter: int = 0

    @property
    def replayable(self) -> bool:
        return self.toxicity >= 1 and self.jitter == 0

    def minimum_ms(self) -> float:
        return len(self.streams()) * max(0, self.latency - self.jitter)

    def expectation(self) -> str:
        return f"round trip >= {self.minimum_ms():g} ms"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        timeout = 2.0 + len(self.streams()) * (self.latency + self.jitter) / 1000
        s = wire.ping(addr, protocol, timeout=timeout)
        ms = s.seconds * 1000
        return s.complete and ms >= self.minimum_ms() * 0.98, {
            "round_trip_ms": ms,
            "error": s.error,
        }

    def _healed(self, system: Any, link: str) -> Check:
        """Healed when a fresh connection answers under half the latency: the best of up
        to `HEAL_SAMPLES` (one slow sample on a busy machine, or another fault on the same
        link healing at the same moment, is not a toxic left behind)."""
        addr, protocol = link_address(system, link)
        limit = max(self.latency * 0.5, 5.0)
        best, samples, error = math.inf, 0, None
        while samples < HEAL_SAMPLES and best >= limit:
            if samples:
                time.sleep(0.02)
            s = wire.ping(addr, protocol, timeout=2.0)
            samples += 1
            if s.complete:
                best = min(best, s.seconds * 1000)
            error = s.error
        return Check(
            link,
            f"round trip back under {limit:g} ms",
            best < limit,
            time.monotonic(),
            {"round_trip_ms": best, "samples": samples, "error": error},
        )


@dataclass(frozen=True, kw_only=True)
class Bandwidth(Toxic):
    """Cap throughput at ``rate`` KB/s (bytes per millisecond)."""

    kind: ClassVar[str] = "bandwidth"
    rate: int

    def _bytes(self) -> int:
        return int(min(max(self.rate * 150, 4096), 8_000_000))  # ~150 ms worth at the cap

    def expectation(self) -> str:
        return f"throughput <= {self.rate} KB/s"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        n = self._bytes()
        up = n if self.stream in ("upstream", "both") else 0
        down = n if self.stream in ("downstream", "both") else 0
        s = wire.bulk(addr, protocol, up=up, down=down, timeout=30.0)
        moved = max(s.received, up if protocol != "http" else min(up, 6000))
        expected_ms = moved / self.rate if self.rate > 0 else math.inf
        ms = s.seconds * 1000
        rate = moved / ms if ms > 0 else math.inf
        observable = expected_ms >= 3.0
        return observable and s.complete and ms >= 0.8 * expected_ms, {
            "bytes": moved,
            "elapsed_ms": ms,
            "measured_kb_s": rate,
            "observable": observable,
            "error": s.error,
        }


@dataclass(frozen=True, kw_only=True)
class SlowClose(Toxic):
    """Delay the TCP close by ``delay`` ms."""

    kind: ClassVar[str] = "slow_close"
    delay: int

    def expectation(self) -> str:
        return f"close arrives >= {self.delay} ms after half-close"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        s = wire.close_time(addr, timeout=2.0 + self.delay / 1000)
        ms = s.seconds * 1000
        return s.complete and ms >= 0.95 * self.delay, {"close_ms": ms, "error": s.error}


@dataclass(frozen=True, kw_only=True)
class Timeout(Toxic):
    """Stop all data; close the connection after ``timeout`` ms (0: hold it forever)."""

    kind: ClassVar[str] = "timeout"
    timeout: int

    def _wait(self) -> float:
        return 0.3 if self.timeout == 0 else max(0.05, min(0.3, self.timeout / 1000 * 0.8))

    def expectation(self) -> str:
        return "no answer through the link"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        s = wire.ping(addr, protocol, timeout=self._wait())
        return not s.complete and s.error != "refused", {
            "waited_ms": s.seconds * 1000,
            "received": s.received,
            "error": s.error,
        }

    def heal(self, system: Any) -> Evidence:
        evidence = super().heal(system)
        return Evidence(
            evidence.fault,
            evidence.phase,
            evidence.started,
            evidence.actuated,
            evidence.checks,
            evidence.error,
            {**evidence.figures, "closed_held_connections": True},
        )


@dataclass(frozen=True, kw_only=True)
class ResetPeer(Toxic):
    """Reset the connection (RST) ``timeout`` ms after data arrives."""

    kind: ClassVar[str] = "reset_peer"
    timeout: int = 0

    def expectation(self) -> str:
        return "the connection is reset before an answer"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        s = wire.ping(addr, protocol, timeout=1.0 + self.timeout / 1000)
        return not s.complete and s.error in ("reset", "eof"), {
            "after_ms": s.seconds * 1000,
            "error": s.error,
        }


@dataclass(frozen=True, kw_only=True)
class Slicer(Toxic):
    """Slice data into ``average_size`` ± ``size_variation`` byte pieces, ``delay`` µs apart."""

    kind: ClassVar[str] = "slicer"
    average_size: int
    size_variation: int = 0
    delay: int = 0

    def expectation(self) -> str:
        return f"data arrives in pieces of about {self.average_size} bytes"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        n = min(max(self.average_size * 20, 2048), 200_000)
        if self.stream == "upstream":
            s = wire.bulk(addr, protocol, up=n, down=0, timeout=10.0)
            sliced = min(n, 6000) if protocol == "http" else n
            expected_ms = (sliced / max(self.average_size, 1) - 1) * self.delay / 1000
            ok = s.complete and expected_ms >= 2.0 and s.seconds * 1000 >= 0.5 * expected_ms
            return ok, {"elapsed_ms": s.seconds * 1000, "expected_ms": expected_ms}
        s = wire.bulk(addr, protocol, up=0, down=n, timeout=10.0)
        mean = s.received / s.chunks if s.chunks else 0
        limit = 4 * (self.average_size + self.size_variation)
        ok = s.complete and s.chunks >= 2 and mean <= limit
        return ok, {"chunks": s.chunks, "mean_chunk": mean, "received": s.received}


@dataclass(frozen=True, kw_only=True)
class LimitData(Toxic):
    """Close the connection after ``bytes`` bytes have passed."""

    kind: ClassVar[str] = "limit_data"
    bytes: int

    def expectation(self) -> str:
        return f"the connection closes after {self.bytes} bytes"

    def probe(self, addr: str, protocol: str) -> tuple[bool, dict[str, Any]]:
        extra = self.bytes + 4096
        if self.stream == "upstream":
            s = wire.bulk(addr, protocol, up=extra, down=0, timeout=5.0)
        else:
            s = wire.bulk(addr, protocol, up=0, down=extra, timeout=5.0)
        return not s.complete and s.received <= self.bytes, {
            "received": s.received,
            "error": s.error,
        }


TOXICS: dict[str, type[Toxic]] = {
    t.kind: t for t in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)
}


@dataclass(frozen=True)
class LinkDown:
    """Disable the link's proxy: it stops listening and closes every open connection."""

    kind: ClassVar[str] = "down"
    link: str

    def describe(self) -> str:
        return f"link down {self.link}"

    def inject(self, system: Any) -> Evidence:
        links = resolve_links(system.topology, self.link)

        def action() -> None:
            for name in links:
                system.toxiproxy.set_enabled(name, False)

        def verify(_: None) -> list[Check]:
            checks = []
            for name in links:
                s = wire.connect(link_address(system, name)[0])
                checks.append(
                    Check(
                        name,
                        "connections are refused",
                        s.error == "refused",
                        time.monotonic(),
                        {"error": s.error},
                    )
                )
            return checks

        return act(self.describe(), "inject", action, verify)

    def heal(self, system: Any) -> Evidence:
        links = resolve_links(system.topology, self.link)

        def action() -> None:
            for name in links:
                system.toxiproxy.set_enabled(name, True)

        def verify(_: None) -> list[Check]:
            checks = []
            for name in links:
                addr, protocol = link_address(system, name)
                s = wire.ping(addr, protocol, timeout=2.0)
                checks.append(
                    Check(
                        name,
                        "the link answers again",
                        s.complete,
                        time.monotonic(),
                        {"round_trip_ms": s.seconds * 1000, "error": s.error},
                    )
                )
            return checks

        return act(self.describe(), "heal", action, verify)


# --- helpers ---------------------------------------------------------------------------


def link_address(system: Any, link: str) -> tuple[str, str]:
    """The proxy's listen address and the protocol its target speaks (the target's
    password, if it has one, remembered for that address: `wire.remember_password`; an
    HTTP target's readiness path, answered by the target itself, as its ping path:
    `wire.remember_ping_path`)."""
    endpoint = system.endpoints.links[link]
    probe = system.topology.component(endpoint.target).probe
    protocol = probe.kind
    target = system.endpoints.components.get(endpoint.target)
    wire.remember_password(endpoint.listen, None if target is None else target.password)
    http_path = (probe.target or None) if protocol == "http" else None
    wire.remember_ping_path(endpoint.listen, http_path)
    return endpoint.listen, protocol


def remove_toxic(tox: ToxiproxyClient, proxy: str, name: str, attempts: int = 3) -> None:
    """Remove a toxic; against a hung API (Shopify/toxiproxy#558) retry, then recreate
    the proxy."""
    quick = ToxiproxyClient(tox.url, timeout=2.0)
    last: Exception | None = None
    for _ in range(attempts):
        try:
            quick.remove_toxic(proxy, name)
            return
        except ToxiproxyError as exc:
            if "HTTP 404" in str(exc):
                return  # already gone
            last = exc
    try:
        spec = tox.proxy(proxy)
        tox.request("DELETE", f"/proxies/{proxy}")
        tox.request(
            "POST",
            "/proxies",
            {
                "name": proxy,
                "listen": spec["listen"],
                "upstream": spec["upstream"],
                "enabled": spec["enabled"],
            },
        )
    except ToxiproxyError as exc:
        raise ToxiproxyError(f"cannot remove toxic {name} from {proxy}: {last}; {exc}") from None


def _probes_for(toxicity: float) -> int:
    """Fresh connections needed so that all-clean has probability < 0.1%."""
    if toxicity <= 0:
        return 1
    return min(_MAX_PROBES, max(1, math.ceil(math.log(0.001) / math.log(1 - toxicity))))
