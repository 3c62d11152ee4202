"""The containers backend with real images: start, serve through the Toxiproxy container,
abilities, readiness errors, teardown and reaping leave nothing labelled behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from harness.backends import DataWipeable, Killable, LogReadable, Pausable, Restartable
from harness.backends.containers import (
    SESSION_LABEL,
    ContainersBackend,
    engine_available,
)
from harness.errors import ComponentError, ConfigError, ReadinessTimeout
from harness.topology import load_topology

AVAILABLE, WHY = engine_available()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.containers,
    pytest.mark.skipif(not AVAILABLE, reason=WHY),
]
ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"


def get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status


def ping(address: str, timeout: float = 1.0) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def labelled(kind: str, sid: str | None = None) -> list[str]:
    """IDs of containers / networks / volumes carrying the session label (of ``sid``)."""
    label = SESSION_LABEL if sid is None else f"{SESSION_LABEL}={sid}"
    command = {
        "containers": ["docker", "ps", "-aq"],
        "networks": ["docker", "network", "ls", "-q"],
        "volumes": ["docker", "volume", "ls", "-q"],
    }[kind]
    out = subprocess.run([*command, "--filter", f"label={label}"], capture_output=True, text=True)
    return out.stdout.split()


def assert_nothing_left(sid: str) -> None:
    for kind in ("containers", "networks", "volumes"):
        assert labelled(kind, sid) == [], f"{kind} of session {sid} left behind"


def test_mini_serves_through_toxiproxy_and_tears_down(tmp_path: Path) -> None:
    topo = load_topology(MINI)
    with ContainersBackend(base=tmp_path).start(topo) as system:
        sid = system.session.id
        ep = system.endpoints
        for url in ep.gateways:  # client edge: published Toxiproxy listener -> web-N:8000
            assert url.startswith("http://127.0.0.1:")
            assert get(url + "/") == 200
        assert set(system.toxiproxy.proxies()) == {link.name for link in topo.links}
        db = ep.components["db"]
        with psycopg.connect(db.dsn, connect_timeout=2) as conn:
            assert conn.execute("select current_user").fetchone() == ("postgres",)
        host, port = ep.links["web-1->db"].listen.split(":")
        with psycopg.connect(host=host, port=int(port), user="postgres", dbname="postgres") as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        # the proxy forwards inside the network; the harness sees host addresses
        assert system.toxiproxy.proxy("web-1->db")["upstream"] == f"127.0.0.1:{db.port}"
        # components reach their links as toxiproxy:PORT
        inspect = system.container("web-1").attrs
        assert inspect["Config"]["Env"].count("DB_ADDR=toxiproxy:20002") == 1
        # web-1 lives in its holder's network namespace; the holder publishes its port
        holder = system.holders["web-1"].get_wrapped_container()
        holder.reload()
        assert inspect["HostConfig"]["NetworkMode"] == f"container:{holder.id}"
        bindings = holder.attrs["HostConfig"]["PortBindings"]
        assert bindings == {
            "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(ep.components["web-1"].port)}]
        }
        # toxiproxy, and db, cache, web-1, web-2 each with its holder
        assert len(labelled("containers", sid)) == 9
        assert len(labelled("networks", sid)) == 1
        assert system.timings and system.timings.total < 30
    assert_nothing_left(sid)
    assert not (tmp_path / "sessions" / sid).exists()


def test_abilities_kill_pause_restart_wipe_logs_disconnect(tmp_path: Path) -> None:
    topo = load_topology(MINI, profile="single")
    with ContainersBackend(base=tmp_path).start(topo) as system:
        for ability in (Killable, Pausable, Restartable, DataWipeable, LogReadable):
            assert isinstance(system, ability)
        url = system.endpoints.gateways[0] + "/"
        cache_link = system.endpoints.links["web-1->cache"].listen

        system.pause("web-1")
        with pytest.raises(OSError):
            get(url, timeout=0.5)
        system.resume("web-1")
        assert get(url) == 200

        system.kill("web-1")
        assert not system.is_running("web-1")
        # As on the local backend a killed process's port refuses at once (its holder keeps
        # the address): Toxiproxy's dial fails fast and drops the client, no timeout.
        started = time.monotonic()
        with pytest.raises(OSError) as refused:
            get(url, timeout=2.0)
        assert not isinstance(refused.value, TimeoutError), refused.value
        assert time.monotonic() - started < 1.0
        system.restart("web-1")
        assert get(url) == 200

        assert ping(cache_link)
        system.disconnect("cache")  # Toxiproxy can no longer reach it
        assert not ping(cache_link)
        system.reconnect("cache")
        deadline = time.monotonic() + 5
        while not ping(cache_link) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ping(cache_link)

        db = system.endpoints.components["db"]
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute("create table kept (x int)")
        system.restart("db")  # same volume: the table survives
        with psycopg.connect(db.dsn) as conn:
            assert conn.execute("select count(*) from kept").fetchone() == (0,)
        data = system.data_dir("db")
        assert data.exists()
        system.kill("db", signal.SIGKILL)
        system.wipe_data("db")
        assert not data.exists()
        with pytest.raises(ComponentError, match="db"):
            system.restart("db", timeout=5)
        system.reinit_data("db")  # a fresh copy of the initdb template
        system.restart("db")
        with psycopg.connect(db.dsn) as conn:
            assert conn.execute("select to_regclass('kept')").fetchone() == (None,)

        system.kill("cache", signal.SIGTERM)
        assert not system.is_running("cache")
        assert "ready to accept connections" in system.logs("cache").lower()


def test_readiness_timeout_names_component_probe_wait_and_log(tmp_path: Path) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: slow
            components:
              stuck:
                image: harness-refsys
                command: [sh, -c, "echo warming up forever; sleep 30"]
                probe: {http: /ready}
            links: [{from: client, to: stuck}]
            """
        )
    )
    base = tmp_path / "base"
    backend = ContainersBackend(ready_timeout=1.5, base=base)
    started = time.monotonic()
    with pytest.raises(ReadinessTimeout) as info, backend.start(load_topology(path)):
        pass
    assert time.monotonic() - started < 15
    message = str(info.value)
    assert "stuck: not ready after 1.5 s waiting for HTTP 2xx from GET http://127.0.0.1:" in message
    assert "status running" in message
    assert "warming up forever" in message
    assert labelled("containers") == [] or all(
        sid not in c for c in labelled("containers") for sid in os.listdir(base / "sessions")
    )
    assert not list((base / "sessions").iterdir())


def test_missing_image_is_a_clear_config_error(tmp_path: Path) -> None:
    path = tmp_path / "noimage.yaml"
    path.write_text(
        "name: t\ncomponents:\n  web:\n    command: ['true']\n    probe: {http: /}\n"
        "links: [{from: client, to: web}]\n"
    )
    backend = ContainersBackend(base=tmp_path)
    with (
        pytest.raises(ConfigError, match=r"components\.web\.image"),
        backend.start(load_topology(path)),
    ):
        pass


def test_a_crashed_run_is_reaped_by_the_next(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_BASE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", str(MINI), "--backend", "containers"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("web-1 http://127.0.0.1:"), first + proc.stderr.read()
        (sid,) = [p.name for p in (tmp_path / "sessions").iterdir()]
        proc.send_signal(signal.SIGKILL)  # no teardown at all
        proc.wait(timeout=5)
        assert len(labelled("containers", sid)) == 9, "the crash should leave containers"
    finally:
        proc.kill()
        proc.wait()
    with ContainersBackend(base=tmp_path).start(load_topology(MINI, profile="single")) as system:
        assert_nothing_left(sid)
        new = system.session.id
    assert_nothing_left(new)


def test_reference_topology_serves_seeded_data(tmp_path: Path) -> None:
    topo = load_topology(profile="hardened")
    with ContainersBackend(base=tmp_path).start(topo, seed=1) as system:
        sid = system.session.id
        system.seed(1)
        for url in system.endpoints.gateways:
            assert get(url + "/nginx-health") == 200
            assert get(url + "/healthz") == 200
        with psycopg.connect(system.endpoints.components["postgres"].dsn) as conn:
            assert conn.execute("select count(*) > 0 from pg_stat_replication").fetchone() == (
                True,
            )  # the standby streams from postgres through its Toxiproxy link
        with pytest.raises(psycopg.OperationalError, match="password"):  # none given
            psycopg.connect(system.endpoints.components["postgres"].url, connect_timeout=3)
    assert_nothing_left(sid)
