"""API tests for the reference system against the real stack (nginx, app workers,
PostgreSQL, Redis, Toxiproxy), in both profiles: every operation, idempotent scans, the
no-false-green ordering, bad input, forged and expired tokens."""

from __future__ import annotations

import http.client
import itertools
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import psycopg
import pytest

from harness.privileges import unreachable
from harness.sessions import tree
from harness.topology import Probe
from reference_system import tokens

pytestmark = pytest.mark.integration

AT = "2022-01-04T09:00:00+08:00"
_counter = itertools.count()


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    client_id: str | None = None,
) -> Answer:
    """One HTTP request on a fresh connection; the body is decoded as JSON."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    data = raw if raw is not None else (None if body is None else orjson.dumps(body))
    headers = {"X-Client-Id": client_id or f"test-{uuid.uuid4().hex[:12]}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        decoded = orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        decoded = payload.decode(errors="replace")
    return Answer(resp.status, hdrs, decoded)


@pytest.fixture(scope="module")
def people(reference_stack) -> dict[str, list[int]]:
    """Seeded person ids by colour (a few hundred of each, ascending)."""
    out: dict[str, list[int]] = {}
    with psycopg.connect(reference_stack.postgres_dsn) as conn:
        for colour in ("green", "yellow", "red"):
            rows = conn.execute(
                "SELECT person_id FROM people WHERE colour = %s ORDER BY person_id LIMIT 300",
                (colour,),
            ).fetchall()
            out[colour] = [r[0] for r in rows]
    return out


@pytest.fixture(scope="module")
def fresh(people) -> Any:
    """Hands out green/yellow people no other test in this module has touched."""
    pools = {c: iter(ids) for c, ids in people.items()}
    return lambda colour="green": next(pools[colour])


@pytest.fixture
def gw(reference_stack) -> str:
    return reference_stack.gateway_urls[0]


def code(base: str, person_id: int) -> Answer:
    return call(base, "GET", f"/v1/code/{person_id}")


def result_item(person_id: int, result: str) -> dict[str, Any]:
    return {
        "sample_id": f"it-{uuid.uuid4().hex}",
        "person_id": person_id,
        "result": result,
        "at": AT,
    }


def scan_body(person_id: int, token: str, scan_id: str | None = None) -> dict[str, Any]:
    return {
        "scan_id": scan_id or f"scan-{uuid.uuid4().hex}",
        "person_id": person_id,
        "venue_id": 1 + next(_counter) % 2000,
        "token": token,
        "at": AT,
    }


def db_scalar(dsn: str, sql: str, *args: Any) -> Any:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, args).fetchone()
    return None if row is None else row[0]


# -- health


def test_health_and_readiness(reference_stack, gw) -> None:
    assert call(gw, "GET", "/nginx-health").status == 200
    assert call(gw, "GET", "/healthz").status == 200
    ready = call(gw, "GET", "/readyz")
    assert ready.status == 200, ready.body
    assert ready.body["ready"] is True
    assert ready.body["profile"] == reference_stack.profile


# -- show code


def test_show_code_answers_colour_and_a_verifiable_token(reference_stack, gw, people) -> None:
    for colour in ("green", "yellow", "red"):
        pid = people[colour][-1]
        ans = code(gw, pid)
        assert ans.status == 200, ans.body
        body = ans.body
        assert body["person_id"] == pid
        assert body["colour"] == colour
        assert body["status_asof"].endswith("Z")
        assert body["degraded"] is False
        verdict = tokens.verify(body["token"], reference_stack.token_key, time.time())
        assert verdict.status == "valid"
        assert verdict.claims is not None
        assert verdict.claims.person_id == pid and verdict.claims.colour == colour


def test_show_code_unknown_and_malformed_person(gw) -> None:
    missing = code(gw, 100_001)
    assert missing.status == 404 and "error" in missing.body
    for bad in ("abc", "0", "-3", "1.5", "99999999999"):
        ans = call(gw, "GET", f"/v1/code/{bad}")
        assert ans.status == 400, (bad, ans.body)
        assert "person_id" in ans.body["error"]


def test_every_gateway_serves(reference_stack, people) -> None:
    pid = people["green"][-2]
    for url in reference_stack.gateway_urls:
        assert code(url, pid).status == 200


# -- result lookup


def test_result_lookup(gw, people) -> None:
    pid = people["red"][-2]
    ans = call(gw, "GET", f"/v1/results/{pid}")
    assert ans.status == 200
    assert ans.body["person_id"] == pid
    assert ans.body["results"][0]["result"] == "positive"
    assert call(gw, "GET", "/v1/results/100001").status == 404
    assert call(gw, "GET", "/v1/results/x").status == 400


# -- lab ingest and the no-false-green ordering


def test_ingest_positive_turns_red_even_with_a_warm_cache(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    for _ in range(3):  # warm whatever cache there is, on every gateway
        for url in reference_stack.gateway_urls:
            assert code(url, pid).body["colour"] == "green"
    ack = call(gw, "POST", "/v1/results", {"results": [result_item(pid, "positive")]})
    assert ack.status == 200, ack.body
    for url in reference_stack.gateway_urls:
        for _ in range(5):
            ans = code(url, pid)
            assert ans.status == 200
            assert ans.body["colour"] == "red", ans.body
    lookup = call(gw, "GET", f"/v1/results/{pid}")
    assert lookup.body["results"][0]["result"] == "positive"


def test_no_false_green_under_concurrent_reads(reference_stack, gw, fresh) -> None:
    """Readers hammer show-code while a batch makes people red; every read that starts
    after the acknowledgement must see red."""
    victims = [fresh("green") for _ in range(20)]
    urls = reference_stack.gateway_urls
    stop = threading.Event()
    acked_at: list[float] = []
    violations: list[tuple[int, dict]] = []

    def reader(offset: int) -> None:
        i = offset
        while not stop.is_set():
            pid = victims[i % len(victims)]
            i += 1
            started = time.monotonic()
            ans = code(urls[i % len(urls)], pid)
            if ans.status != 200:
                continue
            if acked_at and started > acked_at[0] and ans.body["colour"] == "green":
                violations.append((pid, ans.body))

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    ack = call(
        gw, "POST", "/v1/results", {"results": [result_item(p, "positive") for p in victims]}
    )
    acked_at.append(time.monotonic())
    assert ack.status == 200, ack.body
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(10)
    assert not violations, violations[:3]
    for pid in victims:
        assert code(gw, pid).body["colour"] == "red"


def test_negative_clears_yellow_and_never_clears_red(gw, fresh, people) -> None:
    yellow = fresh("yellow")
    red = people["red"][-3]
    ack = call(
        gw,
        "POST",
        "/v1/results",
        {"results": [result_item(yellow, "negative"), result_item(red, "negative")]},
    )
    assert ack.status == 200, ack.body
    assert code(gw, yellow).body["colour"] == "green"
    assert code(gw, red).body["colour"] == "red"


def test_ingest_is_idempotent_by_sample_id(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    batch = {"results": [result_item(pid, "negative")]}
    first = call(gw, "POST", "/v1/results", batch)
    second = call(gw, "POST", "/v1/results", batch)
    assert first.status == second.status == 200
    assert first.body["new"] == 1 and second.body["new"] == 0
    sample = batch["results"][0]["sample_id"]
    n = db_scalar(
        reference_stack.postgres_dsn, "SELECT count(*) FROM results WHERE sample_id = %s", sample
    )
    assert n == 1


def test_ingest_with_an_unknown_person_stores_nothing(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    good = result_item(pid, "positive")
    ans = call(gw, "POST", "/v1/results", {"results": [good, result_item(100_001, "negative")]})
    assert ans.status == 422 and "100001" in ans.body["error"]
    assert (
        db_scalar(
            reference_stack.postgres_dsn,
            "SELECT count(*) FROM results WHERE sample_id = %s",
            good["sample_id"],
        )
        == 0
    )
    assert code(gw, pid).body["colour"] == "green"


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"results": []}, 400),
        ({"results": [{"sample_id": "a", "person_id": 1, "result": "maybe", "at": AT}]}, 400),
        ({"results": [{"sample_id": "a", "person_id": "1", "result": "positive", "at": AT}]}, 400),
        (
            {
                "results": [
                    {
                        "sample_id": "a",
                        "person_id": 1,
                        "result": "positive",
                        "at": AT,
                        "extra": True,
                    }
                ]
            },
            400,
        ),
        (
            {
                "results": [
                    {"sample_id": "a", "person_id": 1, "result": "positive", "at": "tomorrow"}
                ]
            },
            400,
        ),
        ({"batch": []}, 400),
    ],
)
def test_ingest_bad_input(gw, payload: dict, status: int) -> None:
    ans = call(gw, "POST", "/v1/results", payload)
    assert ans.status == status, ans.body
    assert isinstance(ans.body, dict) and ans.body["error"]


def test_oversized_batch_is_rejected(gw) -> None:
    items = [
        {"sample_id": f"big-{i}", "person_id": 1 + i, "result": "negative", "at": AT}
        for i in range(1001)
    ]
    ans = call(gw, "POST", "/v1/results", {"results": items})
    assert ans.status == 422, ans.body
    assert "1001" in ans.body["error"]


# -- scans


def wait_for_row(dsn: str, scan_id: str, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = db_scalar(dsn, "SELECT count(*) FROM scans WHERE scan_id = %s", scan_id)
        if n or time.monotonic() > deadline:
            return n
        time.sleep(0.05)


def test_scan_is_recorded_once_and_repeats_get_the_same_answer(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    token = code(gw, pid).body["token"]
    body = scan_body(pid, token)
    answers = [call(url, "POST", "/v1/scans", body) for url in reference_stack.gateway_urls * 2]
    assert {a.status for a in answers} == {200}, [a.body for a in answers]
    assert all(a.body == answers[0].body for a in answers)
    assert answers[0].body["scan_id"] == body["scan_id"]
    assert wait_for_row(reference_stack.postgres_dsn, body["scan_id"]) == 1
    time.sleep(0.3)  # a late replay must not add a second row
    assert (
        db_scalar(
            reference_stack.postgres_dsn,
            "SELECT count(*) FROM scans WHERE scan_id = %s",
            body["scan_id"],
        )
        == 1
    )


def test_many_scans_are_all_durable(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    token = code(gw, pid).body["token"]
    ids = []
    for _ in range(30):
        body = scan_body(pid, token)
        assert call(gw, "POST", "/v1/scans", body).status == 200
        ids.append(body["scan_id"])
    deadline = time.monotonic() + 10
    with psycopg.connect(reference_stack.postgres_dsn) as conn:
        while True:
            n = conn.execute(
                "SELECT count(*) FROM scans WHERE scan_id = ANY(%s)", (ids,)
            ).fetchone()[0]
            if n == len(ids) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert n == len(ids)


def test_scan_with_a_forged_token_is_refused(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    token = code(gw, pid).body["token"]
    payload, mac = token.split(".")
    forgeries = [
        token[:-2] + ("AA" if token[-2:] != "AA" else "BB"),
        tokens.sign(
            tokens.Claims(pid, "green", 0, int(time.time()), int(time.time()) + 600), b"not-the-key"
        ),
        "garbage",
        payload + "." + mac[::-1],
    ]
    for forged in forgeries:
        body = scan_body(pid, forged)
        ans = call(gw, "POST", "/v1/scans", body)
        assert ans.status == 403, (forged, ans.body)
        assert ans.body["token"] == "forged"
        assert (
            db_scalar(
                reference_stack.postgres_dsn,
                "SELECT count(*) FROM scans WHERE scan_id = %s",
                body["scan_id"],
            )
            == 0
        )


def test_scan_with_an_expired_or_someone_elses_token_is_refused(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    other = fresh("green")
    past = int(time.time()) - 3600
    expired = tokens.sign(
        tokens.Claims(pid, "green", 0, past, past + 600), reference_stack.token_key
    )
    ans = call(gw, "POST", "/v1/scans", scan_body(pid, expired))
    assert ans.status == 403 and ans.body["token"] == "expired"
    theirs = code(gw, other).body["token"]
    ans = call(gw, "POST", "/v1/scans", scan_body(pid, theirs))
    assert ans.status == 403 and ans.body["token"] == "mismatch"


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[]",
        b'{"scan_id": "x"}',
        b'{"scan_id": "x", "person_id": 1, "venue_id": 1, "token": "t", "at": "'
        + AT.encode()
        + b'", "colour": "green"}',
        b'{"scan_id": "x", "person_id": "1", "venue_id": 1, "token": "t", "at": "'
        + AT.encode()
        + b'"}',
        b'{"scan_id": "", "person_id": 1, "venue_id": 1, "token": "t", "at": "'
        + AT.encode()
        + b'"}',
    ],
)
def test_scan_bad_input(gw, raw: bytes) -> None:
    ans = call(gw, "POST", "/v1/scans", raw=raw)
    assert 400 <= ans.status < 500, ans.body
    assert isinstance(ans.body, dict) and ans.body["error"]


# -- token check


def test_token_verify_endpoint(reference_stack, gw, fresh) -> None:
    pid = fresh("green")
    token = code(gw, pid).body["token"]
    ok = call(gw, "POST", "/v1/tokens/verify", {"token": token})
    assert ok.status == 200 and ok.body["status"] == "valid"
    assert ok.body["claims"]["person_id"] == pid
    past = int(time.time()) - 3600
    expired = tokens.sign(
        tokens.Claims(pid, "green", 0, past, past + 600), reference_stack.token_key
    )
    assert call(gw, "POST", "/v1/tokens/verify", {"token": expired}).body["status"] == "expired"
    forged = call(gw, "POST", "/v1/tokens/verify", {"token": token[:-3] + "abc"})
    assert forged.body["status"] == "forged" and forged.body["claims"] is None
    assert call(gw, "POST", "/v1/tokens/verify", {"tok": token}).status == 400


# -- the edge


def test_unknown_routes_and_methods_are_json_4xx(gw) -> None:
    for method, path in [
        ("GET", "/v1/nothing"),
        ("DELETE", "/v1/code/1"),
        ("GET", "/v1/scans"),
        ("PUT", "/v1/results"),
        ("FOO", "/v1/scans"),  # a method token nginx passes on but the app server refuses
        ("OPTIONS", "/"),
    ]:
        ans = call(gw, method, path)
        assert 400 <= ans.status < 500, (method, path, ans.status)
        assert isinstance(ans.body, dict) and ans.body["error"]


def test_per_client_rate_limit_only_in_hardened(reference_stack, gw, people) -> None:
    pid = people["green"][-4]
    statuses = []
    limited = None
    for _ in range(120):
        ans = call(gw, "GET", f"/v1/code/{pid}", client_id="abusive-client")
        statuses.append(ans.status)
        if ans.status == 429:
            limited = ans
    if reference_stack.profile == "hardened":
        assert limited is not None, statuses
        assert limited.headers.get("retry-after") and limited.body["error"]
        assert code(gw, pid).status == 200  # another client is unaffected
    else:
        assert 429 not in statuses


# -- the read model, and hypothesis 5: the database link is down


def test_seed_loads_the_read_model_and_hardened_serves_from_it(reference_stack, gw, people) -> None:
    import redis as redis_lib

    pid = people["yellow"][-5]
    client = redis_lib.Redis.from_url(reference_stack.redis_url)
    try:
        if reference_stack.profile == "hardened":
            assert client.exists("readmodel:complete") == 1  # seed --redis
            raw = client.get(f"code:{pid}")
            assert raw is not None and raw.split(b"|")[2] == b"yellow"
            assert client.ttl(f"code:{pid}") == -1  # never expires
        else:
            assert client.dbsize() == 0  # no cache in naive: its seed leaves Redis alone
    finally:
        client.close()
    ready = call(gw, "GET", "/readyz").body
    ans = code(gw, pid)
    assert ans.status == 200 and ans.body["colour"] == "yellow"
    if reference_stack.profile == "hardened":
        assert ready["read_model"] == "complete"
        assert ans.body["source"] == "read-model" and ans.body["degraded"] is False
    else:
        assert "read_model" not in ready and ans.body["source"] == "database"


def _set_db_links(system: Any, enabled: bool) -> list[str]:
    names = [n for n in system.toxiproxy.proxies() if n.endswith("->postgres")]
    assert names, system.toxiproxy.proxies()
    for name in names:
        system.toxiproxy.set_enabled(name, enabled)
    return names


def test_with_the_database_link_down_reads_and_scans_keep_working(
    reference_stack, fresh, people
) -> None:
    """Hardened: every app worker's link to PostgreSQL is cut. Show-code is answered from
    the read model (people nobody has read yet: no cache entry could help), unknown people
    are still 404, scans are acknowledged from the spool, and every acknowledged scan is
    in the database once the link is back."""
    if reference_stack.profile != "hardened":
        pytest.skip("naive has neither read model nor spool; the db-down experiment shows it")
    system = reference_stack.system
    urls = reference_stack.gateway_urls
    victims = [fresh("green") for _ in range(6)] + [fresh("yellow") for _ in range(2)]
    red = people["red"][-6]
    acked: list[str] = []
    _set_db_links(system, False)
    try:
        assert call(urls[0], "GET", "/readyz").status == 503  # the database is gone
        for i, pid in enumerate([*victims, red]):
            url = urls[i % len(urls)]
            started = time.monotonic()
            shown = code(url, pid)
            assert shown.status == 200, shown.body
            assert shown.body["source"] == "read-model" and shown.body["degraded"] is False
            assert time.monotonic() - started < 0.5
            body = scan_body(pid, shown.body["token"])
            started = time.monotonic()
            ans = call(url, "POST", "/v1/scans", body)
            assert ans.status == 200 and ans.body["status"] == "recorded", ans.body
            assert time.monotonic() - started < 0.5
            acked.append(body["scan_id"])
        assert code(urls[0], red).body["colour"] == "red"
        assert code(urls[0], 100_001).status == 404  # a complete model knows who is unknown
        forged = scan_body(victims[0], "garbage")
        assert call(urls[0], "POST", "/v1/scans", forged).status == 403
    finally:
        _set_db_links(system, True)
    for scan_id in acked:
        assert wait_for_row(reference_stack.postgres_dsn, scan_id, timeout=20) == 1, scan_id
    deadline = time.monotonic() + 10
    while call(urls[0], "GET", "/readyz").status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_worker_that_cannot_serve_is_routed_around(reference_stack, fresh) -> None:
    """One worker loses both PostgreSQL and Redis (its own links cut; the other worker is
    fine). It answers show-code with a 503, as it must. Hardened: the gateway retries that
    refusal on the other worker, so users never see it; naive: about half of them do."""
    system = reference_stack.system
    sick = ("app-2->postgres", "app-2->redis")
    for name in sick:
        assert name in system.toxiproxy.proxies(), system.toxiproxy.proxies()
    people = [fresh("green") for _ in range(3)]
    worker = system.endpoints.components["app-2"].url
    for name in sick:
        system.toxiproxy.set_enabled(name, False)
    try:
        assert code(worker, people[0]).status == 503
        answers = [
            code(url, pid).status
            for url in reference_stack.gateway_urls
            for pid in people
            for _ in range(4)
        ]
    finally:
        for name in sick:
            system.toxiproxy.set_enabled(name, True)
    refused = answers.count(503)
    if reference_stack.profile == "hardened":
        assert answers == [200] * len(answers)
    else:
        assert refused > 0 and set(answers) <= {200, 503}, answers
    deadline = time.monotonic() + 10
    while code(worker, people[0]).status != 200 and time.monotonic() < deadline:
        time.sleep(0.1)


def _uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid in /proc/{pid}/status")


def test_components_run_as_their_user_where_the_machine_allows(reference_stack) -> None:
    """Nothing of the system runs as root: PostgreSQL as postgres, Redis, the app workers
    and the gateways (nginx's workers too) as nobody. `./dev setup` makes the virtualenv
    with a Python every user can run; with one under a closed home (/root/.pyenv) the
    Python components stay root, and their log says why."""
    import os
    import pwd

    if os.geteuid() != 0:
        pytest.skip("the harness drops privileges only when it runs as root")
    system = reference_stack.system
    nobody = pwd.getpwnam("nobody")
    assert _uid(system.procs["redis"].popen.pid) == nobody.pw_uid
    assert _uid(system.procs["postgres"].popen.pid) == pwd.getpwnam("postgres").pw_uid
    python_reachable = unreachable(sys.executable, nobody.pw_uid, nobody.pw_gid) is None
    for name in ("app-1", "gateway-a"):
        running = system.procs[name]
        pids = tree(running.popen.pid)
        if python_reachable:
            assert {_uid(pid) for pid in pids} == {nobody.pw_uid}, name
        else:
            assert "runs as root, user 'nobody' cannot run it" in running.log.read_text()


SYSTEM_PYTHON = "/usr/bin/python3"


def _as_nobody(code: str) -> subprocess.CompletedProcess[str]:
    """Run Python `code` (standard library only) as user nobody, another local user, with
    the system's Python (the project's may sit under a home only root can enter)."""
    import pwd

    nobody = pwd.getpwnam("nobody")
    return subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", code],
        user=nobody.pw_uid,
        group=nobody.pw_gid,
        extra_groups=[],
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_local_user_without_the_password_gets_nothing(reference_stack) -> None:
    """Another local user reaches PostgreSQL and Redis on loopback but is refused without
    the run's passwords, which are on no process's command line; the harness's own
    probes, with them, get in."""
    import os

    from harness import probes

    if os.geteuid() != 0:
        pytest.skip("needs root to act as another local user")
    if not Path(SYSTEM_PYTHON).exists():
        pytest.skip(f"no {SYSTEM_PYTHON} to run as user nobody")
    system = reference_stack.system
    pg = system.endpoints.components["postgres"]
    redis = system.endpoints.components["redis"]
    assert pg.password and redis.password and pg.password != redis.password
    tried = _as_nobody(
        "import socket, struct\n"
        f"s = socket.create_connection(('{pg.host}', {pg.port}), timeout=3)\n"
        "p = b'user\\0postgres\\0database\\0postgres\\0\\0'\n"
        "s.sendall(struct.pack('!ii', 8 + len(p), 196608) + p)\n"
        "r = s.recv(64)\n"
        "print(r[:1].decode(), struct.unpack('!i', r[5:9])[0])\n"
        f"s = socket.create_connection(('{redis.host}', {redis.port}), timeout=3)\n"
        "s.sendall(b'*2\\r\\n$4\\r\\nKEYS\\r\\n$1\\r\\n*\\r\\n')\n"
        "print(s.recv(64).decode().strip())\n"
    )
    assert tried.returncode == 0, tried.stderr
    pg_answer, redis_answer = tried.stdout.splitlines()
    assert pg_answer == "R 10", pg_answer  # SASL: a password is asked, nothing is served
    assert redis_answer.startswith("-NOAUTH"), redis_answer
    for probe, ep in ((Probe("postgres", "SELECT 1"), pg), (Probe("redis"), redis)):
        assert probes.check(probe, ep.host, ep.port, ep.password)
        assert not probes.check(probe, ep.host, ep.port, "wrong")
    from harness.sessions import descendants

    leaders = [running.popen.pid for running in system.procs.values()]
    for pid in leaders + [child for leader in leaders for child in descendants(leader)]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # a short-lived child (a PostgreSQL backend) already gone
        assert pg.password.encode() not in cmdline and redis.password.encode() not in cmdline
