"""The local backend with real PostgreSQL, Redis, Toxiproxy: start, abilities, no leaks."""

from __future__ import annotations

import os
import pwd
import shutil
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
from harness.backends.local import LocalBackend
from harness.errors import ComponentError, ReadinessTimeout
from harness.portguard import PortGuard, table_name
from harness.sessions import (
    descendants,
    group_members,
    labelled_processes,
    reap,
    recorded_groups,
)
from harness.shm import mapped_segments
from harness.topology import load_topology

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"
SYSTEM_PYTHON = "/usr/bin/python3"  # one every user can run


def get(url: str, timeout: float = 2.0) -> int:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status


def groups_of(base: Path, sid: str) -> dict[int, int]:
    return recorded_groups(base / "sessions" / sid)


def assert_gone(base: Path, session_ids: set[str], groups: dict[int, int]) -> None:
    """No process, session directory or port reservation of these sessions is left."""
    deadline = time.monotonic() + 3
    while labelled_processes(session_ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert labelled_processes(session_ids) == {}
    assert group_members(groups) == []
    for sid in session_ids:
        assert not (base / "sessions" / sid).exists()
    ports = base / "ports"
    if ports.exists():
        assert not [p for p in ports.iterdir() if p.read_text() in session_ids]


def test_start_serves_through_toxiproxy_and_tears_down_without_leaks(tmp_path: Path) -> None:
    topo = load_topology(MINI)
    with LocalBackend(base=tmp_path).start(topo) as system:
        sid = system.session.id
        ep = system.endpoints
        assert len(ep.gateways) == 2
        for url in ep.gateways:  # client edge through Toxiproxy to each web replica
            assert get(url + "/") == 200
        proxies = system.toxiproxy.proxies()
        assert set(proxies) == {link.name for link in topo.links}
        db = ep.components["db"]
        with psycopg.connect(db.dsn, connect_timeout=2) as conn:
            assert conn.execute("select current_user").fetchone() == ("postgres",)
        # the app-side address of a link is a Toxiproxy listener forwarding to the target
        host, port = ep.links["web-1->db"].listen.split(":")
        with psycopg.connect(host=host, port=int(port), user="postgres", dbname="postgres") as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        groups = groups_of(tmp_path, sid)
        assert len(groups) == 5  # toxiproxy, postgres, redis, 2 web: one group each
        # other local users may reach a component's directory only by its exact path, and
        # read nothing in it (PostgreSQL's socket and data, logs, configurations)
        assert (system.run_dir.stat().st_mode & 0o777) == 0o711
        for name in ("db", "cache", "web-1", "toxiproxy"):
            assert ((system.run_dir / name).stat().st_mode & 0o777) == 0o700, name
        postgres = system.pid("db")
        assert len(descendants(postgres)) >= 4  # checkpointer, walwriter, ... (own groups)
        segments = mapped_segments([postgres, *descendants(postgres)])
        # its dynamic shared memory and its System V interlock segment
        assert segments.files and segments.sysv and segments.remaining() == segments
        assert len(labelled_processes({sid})) >= 3  # the ones that keep their environment
        assert system.timings and system.timings.total < 10
    assert_gone(tmp_path, {sid}, groups)
    assert not os.path.exists(f"/proc/{postgres}")
    assert not segments.remaining()  # SIGKILL would have left them
    assert not [p for p in labelled_processes() if p in descendants(os.getpid())]


def test_abilities_kill_pause_restart_wipe_logs(tmp_path: Path) -> None:
    with LocalBackend(base=tmp_path).start(load_topology(MINI, profile="single")) as system:
        for ability in (Killable, Pausable, Restartable, DataWipeable, LogReadable):
            assert isinstance(system, ability)
        url = system.endpoints.gateways[0] + "/"
        cache = system.endpoints.components["cache"]

        system.pause("web-1")
        with pytest.raises(OSError):
            get(url, timeout=0.5)
        system.resume("web-1")
        assert get(url) == 200

        system.kill("web-1")
        assert not system.is_running("web-1")
        with pytest.raises(OSError):
            get(url, timeout=0.5)
        system.restart("web-1")
        assert get(url) == 200

        db = system.pid("db")
        assert db is not None
        segments = mapped_segments([db, *descendants(db)])
        system.kill("db", signal.SIGKILL)
        assert segments and not segments.remaining()
        system.wipe_data("db")
        assert not system.data_dir("db").exists()
        with pytest.raises(ComponentError, match="db"):
            system.restart("db", timeout=5)

        system.kill("cache", signal.SIGTERM)
        with pytest.raises(OSError):
            socket.create_connection((cache.host, cache.port), timeout=0.5)
        assert "ready to accept connections" in system.logs("cache").lower()


def test_readiness_timeout_names_component_probe_wait_and_log(tmp_path: Path) -> None:
    path = tmp_path / "slow.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: slow
            components:
              stuck:
                command: [sh, -c, "echo warming up forever; sleep 30"]
                probe: {http: /ready}
            links: [{from: client, to: stuck}]
            """
        )
    )
    base = tmp_path / "base"
    started = time.monotonic()
    backend = LocalBackend(ready_timeout=1.0, base=base)
    with pytest.raises(ReadinessTimeout) as info, backend.start(load_topology(path)):
        pass
    assert time.monotonic() - started < 5
    message = str(info.value)
    assert "stuck: not ready after 1.0 s waiting for HTTP 2xx from GET http://127.0.0.1:" in message
    assert "warming up forever" in message
    assert not list((base / "sessions").iterdir())  # nothing half-started is left behind


def test_an_exception_inside_the_run_still_tears_down(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), LocalBackend(base=tmp_path).start(load_topology(MINI)) as s:
        sid = s.session.id
        groups = groups_of(tmp_path, sid)
        raise RuntimeError("experiment blew up")
    assert_gone(tmp_path, {sid}, groups)


def _stop(proc: subprocess.Popen) -> None:
    """End a harness subprocess the way a user would (Ctrl-C), so a failing test leaks nothing."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sigint_default() -> None:
    """In the child: SIGINT as a terminal delivers it. A run started in the background of
    a non-interactive shell inherits SIGINT ignored, and Python keeps it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_session(base: Path, groups: int, timeout: float = 20) -> tuple[str, dict[int, int]]:
    """The one session under ``base`` once it has started ``groups`` process groups."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sessions = base / "sessions"
        if sessions.exists() and any(sessions.iterdir()):
            sid = next(sessions.iterdir()).name
            recorded = groups_of(base, sid)
            if len(recorded) >= groups:
                return sid, recorded
        time.sleep(0.05)
    raise AssertionError("no session appeared")


def test_ctrl_c_on_harness_up_tears_everything_down(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_BASE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", str(MINI)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_sigint_default,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("web-1 http://127.0.0.1:"), first + proc.stderr.read()
        lines = [first] + [proc.stdout.readline() for _ in range(4)]
        assert [line.split()[0] for line in lines] == ["web-1", "web-2", "toxiproxy", "db", "cache"]
        assert lines[3].split()[1].startswith("postgresql://")
        sid, groups = _wait_for_session(tmp_path, 5)
        assert group_members(groups)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "torn down" in proc.stderr.read()
    finally:
        _stop(proc)
    try:
        assert_gone(tmp_path, {sid}, groups)
    finally:
        reap(tmp_path)  # a failing check leaves nothing running either


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_pytest_run_tears_down(tmp_path: Path, sig: signal.Signals) -> None:
    test_file = tmp_path / "test_sleepy.py"
    test_file.write_text(
        textwrap.dedent(
            f"""
            import time
            from harness.topology import load_topology

            def test_sleeps(start_system):
                start_system(load_topology({str(MINI)!r}))
                print("STARTED", flush=True)
                time.sleep(60)
            """
        )
    )
    env = {**os.environ, "HARNESS_BASE_DIR": str(tmp_path / "base")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-s", "-q", "-p", "no:cacheprovider", str(test_file)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_sigint_default,
    )
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if "STARTED" in line:
                break
        assert "STARTED" in seen[-1], "".join(seen)
        sid, groups = _wait_for_session(tmp_path / "base", 5)
        assert group_members(groups)
        proc.send_signal(sig)
        proc.wait(timeout=15)
    finally:
        _stop(proc)
    try:
        assert_gone(tmp_path / "base", {sid}, groups)
    finally:
        reap(tmp_path / "base")  # a failing check leaves nothing running either


def test_a_crashed_run_is_reaped_by_the_next(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_BASE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", str(MINI)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        proc.stdout.readline()
        sid, groups = _wait_for_session(tmp_path, 5)
        segments = mapped_segments(group_members(groups))
        assert segments  # PostgreSQL's
        proc.send_signal(signal.SIGKILL)  # no teardown at all
        proc.wait(timeout=5)
        assert group_members(groups), "the crash should have left orphans behind"
    finally:
        _stop(proc)
    with LocalBackend(base=tmp_path).start(load_topology(MINI, profile="single")) as system:
        assert group_members(groups) == []
        assert not segments.remaining()
        assert not (tmp_path / "sessions" / sid).exists()
        new = system.session.id
        new_groups = groups_of(tmp_path, new)
    assert_gone(tmp_path, {sid, new}, groups | new_groups)


def test_two_runs_at_once_do_not_collide(tmp_path: Path) -> None:
    backend = LocalBackend(base=tmp_path)
    topo = load_topology(MINI, profile="single")
    with backend.start(topo) as one, backend.start(topo) as two:
        ports_one = {c.port for c in one.endpoints.components.values()}
        ports_two = {c.port for c in two.endpoints.components.values()}
        assert not ports_one & ports_two
        assert get(one.endpoints.gateways[0] + "/") == get(two.endpoints.gateways[0] + "/") == 200


def test_links_no_fault_needs_run_direct_and_faults_act_on_the_proxied_ones(
    tmp_path: Path,
) -> None:
    from harness.faults import Latency, LinkDown

    topo = load_topology(MINI)
    proxied = {"web-1->db", "client->web-2"}
    with LocalBackend(base=tmp_path).start(topo, proxied=proxied) as system:
        ep = system.endpoints
        assert set(system.toxiproxy.proxies()) == proxied
        assert set(ep.direct()) == {link.name for link in topo.links} - proxied
        # a direct link's address is the target's own; a proxied one is Toxiproxy's
        web1 = ep.components["web-1"]
        assert ep.gateways[0] == f"http://{web1.host}:{web1.port}"
        assert ep.links["client->web-1"].listen == ep.links["client->web-1"].upstream
        assert ep.links["web-1->db"].listen != ep.links["web-1->db"].upstream
        for url in ep.gateways:
            assert get(url + "/") == 200
        # the rendered environment points at the proxy, or straight at the target
        env1 = Path(f"/proc/{system.pid('web-1')}/environ").read_bytes().split(b"\0")
        env2 = Path(f"/proc/{system.pid('web-2')}/environ").read_bytes().split(b"\0")
        assert f"DB_ADDR={ep.links['web-1->db'].listen}".encode() in env1
        db = ep.components["db"]
        assert f"DB_ADDR={db.host}:{db.port}".encode() in env2
        # faults act on the proxied links and prove it; a direct link still has an address
        evidence = Latency(link="web-1->db", latency=200).inject(system)
        assert evidence.took_effect, evidence.summary()
        assert Latency(link="web-1->db", latency=200).heal(system).took_effect
        down = LinkDown(link="client->web-2").inject(system)
        assert down.took_effect, down.summary()
        assert LinkDown(link="client->web-2").heal(system).took_effect
        host, port = ep.links["web-2->db"].listen.split(":")
        with psycopg.connect(host=host, port=int(port), user="postgres", dbname="postgres") as conn:
            assert conn.execute("select 1").fetchone() == (1,)


def _nft_tables() -> str:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    return subprocess.run([nft, "list", "tables"], capture_output=True, text=True).stdout


def _guard_or_skip(system: object) -> PortGuard:
    """The system's guard of the Toxiproxy API; skips where the machine cannot guard (not
    root, no nft, no CAP_NET_ADMIN), with the harness's own reason."""
    guarded = getattr(system, "api_guard", None)
    if not isinstance(guarded, PortGuard):
        pytest.skip(f"no guard on this machine: {guarded}")
    return guarded


def test_only_the_harness_user_reaches_the_toxiproxy_api(tmp_path: Path) -> None:
    """Toxiproxy's API has no authentication: a local firewall rule lets only the
    harness's own user connect; another user (nobody) is refused, the harness is served,
    and the rule goes with the system."""
    if not os.path.exists(SYSTEM_PYTHON):
        pytest.skip(f"no {SYSTEM_PYTHON} to run as user nobody")
    topo = load_topology(MINI, profile="single")
    with LocalBackend(base=tmp_path).start(topo) as system:
        table = _guard_or_skip(system).table
        api = system.endpoints.toxiproxy
        assert get(api + "/version") == 200
        nobody = pwd.getpwnam("nobody")
        tried = subprocess.run(
            [SYSTEM_PYTHON, "-I", "-c",
             f"import urllib.request\nurllib.request.urlopen('{api}/proxies', timeout=3)"],
            user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], cwd="/",
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert tried.returncode != 0 and "Connection refused" in tried.stderr, tried.stderr
        assert table in _nft_tables()
    assert table not in _nft_tables()


def test_a_crashed_runs_guard_is_dropped_by_the_next(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_BASE_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", str(MINI)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        proc.stdout.readline()
        sid, _ = _wait_for_session(tmp_path, 5)
        guarded = table_name(sid) in _nft_tables()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=5)
    finally:
        _stop(proc)
    if not guarded:
        pytest.skip("no guard on this machine (not root, no nft, or nft refused)")
    assert table_name(sid) in _nft_tables()  # nobody removed it
    with LocalBackend(base=tmp_path).start(load_topology(MINI, profile="single")):
        assert table_name(sid) not in _nft_tables()
