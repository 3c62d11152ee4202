"""Gateway: the nginx config each profile and override produces."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from reference_system.addresses import Endpoint
from reference_system.gateway import GatewaySpec, render
from reference_system.settings import load

SPEC = GatewaySpec(
    port=20080,
    rundir=Path("/tmp/gw"),
    upstreams=(Endpoint("127.0.0.1", 20001), Endpoint("127.0.0.1", 20002)),
    instance="gateway-a",
    run_as_root=False,
)


def test_hardened_has_every_edge_mechanism() -> None:
    conf = render(load("hardened"), SPEC)
    assert "limit_req zone=per_client" in conf and "$http_x_client_id" in conf
    assert "proxy_next_upstream error timeout" in conf
    assert "max_fails=3 fail_timeout=2s" in conf
    assert "keepalive 64;" in conf and 'proxy_set_header Connection "";' in conf
    assert "proxy_read_timeout 1000ms;" in conf
    assert "Retry-After" in conf
    assert "location = /nginx-health" in conf
    assert "listen 127.0.0.1:20080" in conf
    assert "pid /tmp/gw/nginx.pid" in conf and "daemon off;" in conf


def test_hardened_retries_a_refusal_once_on_the_other_worker() -> None:
    conf = render(load("hardened"), SPEC)
    # each worker's "everyone but me" group, chosen by the worker tried last
    assert "upstream app_not_0 {\n        server 127.0.0.1:20002" in conf
    assert "upstream app_not_1 {\n        server 127.0.0.1:20001" in conf
    assert '"~(^|[ ,])127\\.0\\.0\\.1:20001$" app_not_0;' in conf
    assert conf.count("error_page 503 = @other_worker;") == 2  # location / and /v1/scans
    assert "proxy_pass http://$other_workers;" in conf
    # a 503 is not a failed attempt: it must not take part in marking a worker down
    assert "http_503" not in conf
    assert 'X-Request-Start "t=$request_start"' in conf
    # shed load is passed on, not retried at a second layer
    assert "if ($upstream_http_x_refusal = busy)" in conf


def test_no_refusal_retry_with_one_worker_or_switched_off() -> None:
    one = dataclasses.replace(SPEC, upstreams=SPEC.upstreams[:1])
    for conf in (
        render(load("hardened"), one),
        render(load("hardened", '{"retry_refusal": false}'), SPEC),
        render(load("naive"), SPEC),
    ):
        assert "@other_worker" not in conf and "app_not_" not in conf


def test_naive_is_a_stock_proxy() -> None:
    conf = render(load("naive"), SPEC)
    assert "limit_req " not in conf
    assert "proxy_next_upstream off;" in conf
    assert "max_fails=0" in conf
    assert "keepalive 64" not in conf
    assert "proxy_read_timeout 60s;" in conf


def test_single_override() -> None:
    conf = render(load("hardened", '{"rate_limit": false}'), SPEC)
    assert "limit_req " not in conf and "proxy_next_upstream error" in conf


def test_no_upstreams_is_an_error() -> None:
    with pytest.raises(ValueError, match="upstreams"):
        render(load("naive"), dataclasses.replace(SPEC, upstreams=()))


@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx not installed",
)
@pytest.mark.parametrize("profile", ["naive", "hardened"])
def test_nginx_accepts_the_config(profile: str, tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    spec = dataclasses.replace(SPEC, rundir=tmp_path, run_as_root=False)
    conf = tmp_path / "nginx.conf"
    conf.write_text(render(load(profile), spec))
    done = subprocess.run(
        [nginx, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_max_conns_sheds_at_the_edge_with_503() -> None:
    conf = render(load("hardened"), SPEC)
    assert "max_conns=16" in conf
    assert "return 503" in conf
    naive = render(load("naive"), SPEC)
    assert "max_conns" not in naive and "return 502" in naive


def test_listen_address_follows_host() -> None:
    wide = render(load("hardened"), dataclasses.replace(SPEC, host="0.0.0.0"))
    assert "listen 0.0.0.0:20080 backlog=4096;" in wide
    v6 = render(load("naive"), dataclasses.replace(SPEC, host="::"))
    assert "listen [::]:20080 backlog=4096;" in v6
