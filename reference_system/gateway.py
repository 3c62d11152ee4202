"""Gateway: render an nginx config for one edge proxy and exec nginx in its place.

    python -m reference_system.gateway [--host 127.0.0.1] --port 8080 --dir RUNDIR \\
        --upstreams 127.0.0.1:8001,127.0.0.1:8002 --profile hardened --instance gateway-a

Everything nginx writes (pid, temp files, error log) lives in RUNDIR; ``os.execvp`` keeps
the pid, so whoever started this process can kill or pause nginx's master directly.
``GET /nginx-health`` is answered by nginx itself (readiness), ``GET /nginx-status`` is its
``stub_status`` page (connections and requests, for metrics). ``hardened`` adds per-client
``limit_req`` keyed by ``X-Client-Id`` (else the client's address), short upstream
timeouts, ``proxy_next_upstream``, keep-alive to the upstreams, passive health checks
(``max_fails``/``fail_timeout``) and one retry of a worker's non-busy 503 on another
worker (``retry_refusal``);
``naive`` is a stock reverse proxy. Every error nginx itself produces is JSON, including
the 400 for a request it cannot parse (both profiles).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reference_system.addresses import Endpoint, parse_hostport
from reference_system.settings import OVERRIDES_ENV, PROFILES, Settings, SettingsError, load


@dataclass(frozen=True)
class GatewaySpec:
    """Where one gateway listens, where it keeps its files, and whom it proxies to."""

    port: int
    rundir: Path
    upstreams: tuple[Endpoint, ...]
    instance: str
    run_as_root: bool
    host: str = "127.0.0.1"  # the listen address (0.0.0.0 inside a container)


def _error_location(name: str, status: int, message: str, retry_after: bool) -> str:
    header = "        add_header Retry-After 1 always;\n" if retry_after else ""
    return (
        f"    location @{name} {{\n"
        f"        default_type application/json;\n{header}"
        f'        return {status} \'{{"error":"{message}"}}\';\n'
        f"    }}\n"
    )


# Errors nginx answers before a request has a usable URI (a NUL or a space in the path, a
# garbage request line, an invalid or oversized header, an unsupported HTTP version or
# transfer coding). A request that failed to parse cannot be sent to a *named* location
# (nginx answers its own HTML 500 instead), so these go to exact-match internal URIs.
# 501 and 505 are the client's fault here (an HTTP version or transfer coding this API
# does not speak): answered as 400, never as a 5xx.
PARSE_ERRORS = "/__refsys_error"
_PARSE_PAGES = (
    # (codes nginx produces, the status answered, its URI suffix, the message)
    ("400 494 501 505", 400, "400", "bad request"),
    ("414", 414, "414", "request line too long"),
    ("405", 405, "405", "method not allowed"),
    ("411", 411, "411", "length required"),
    ("404", 404, "404", "not found"),
)


def _parse_error_pages() -> str:
    return "".join(
        f"        error_page {codes} ={status} {PARSE_ERRORS}/{suffix};\n"
        for codes, status, suffix, _ in _PARSE_PAGES
    )


def _parse_error_locations() -> str:
    return "".join(
        f"    location = {PARSE_ERRORS}/{suffix} {{\n"
        "        internal;\n"
        "        default_type application/json;\n"
        f'        return {status} \'{{"error":"{message}"}}\';\n'
        "    }\n"
        for _, status, suffix, message in _PARSE_PAGES
    )


def render(settings: Settings, spec: GatewaySpec) -> str:
    """The nginx.conf text for ``spec`` under ``settings``."""
    s = settings
    run = spec.rundir
    if not spec.upstreams:
        raise ValueError("--upstreams: expected at least one HOST:PORT")
    health = (
        f" max_fails={s.upstream_max_fails} fail_timeout={s.upstream_fail_timeout_s}s"
        if s.upstream_health
        else " max_fails=0"
    )
    if s.upstream_max_conns:
        # Cap what each worker is sent: past it nginx sheds at almost no cost instead of
        # piling requests in front of a saturated worker's event loop, where the app's
        # own admission control cannot see them yet. Per upstream group and gateway.
        health += f" max_conns={s.upstream_max_conns}"
    keepalive = (
        f"        keepalive {s.upstream_keepalive};\n        keepalive_requests 100000;\n"
        f"        keepalive_timeout 60s;\n"
        if s.upstream_keepalive
        else ""
    )

    def group(name: str, members: tuple[Endpoint, ...]) -> str:
        servers = "".join(f"        server {u}{health};\n" for u in members)
        return f"    upstream {name} {{\n{servers}{keepalive}    }}\n"

    upstreams = group("app", spec.upstreams)
    refusal_retry = s.retry_refusal and len(spec.upstreams) > 1
    if refusal_retry:
        upstreams += _other_worker_groups(spec.upstreams, group)
    proxy = [
        "proxy_pass http://app;",
        # The app reads nothing of the client's headers, and its HTTP parser refuses some
        # that nginx lets through (control bytes in a value) with a plain-text 400: pass
        # on only what nginx sets itself (Host, the body's length, X-Request-Start).
        "proxy_pass_request_headers off;",
        'proxy_set_header X-Request-Start "t=$request_start";',
        "proxy_set_header Host $host;",
    ]
    if s.upstream_keepalive:
        proxy += ["proxy_http_version 1.1;", 'proxy_set_header Connection "";']
    if s.upstream_timeouts:
        proxy += [
            f"proxy_connect_timeout {s.upstream_connect_timeout_ms}ms;",
            f"proxy_send_timeout {s.upstream_read_timeout_ms}ms;",
            f"proxy_read_timeout {s.upstream_read_timeout_ms}ms;",
        ]
    else:
        proxy += [
            "proxy_connect_timeout 60s;",
            "proxy_send_timeout 60s;",
            "proxy_read_timeout 60s;",
        ]
    if s.upstream_retry:
        # Every POST here is idempotent (scan_id, sample_id), so retrying them is safe.
        proxy += [
            "proxy_next_upstream error timeout http_502 http_504 non_idempotent;",
            "proxy_next_upstream_tries 2;",
            f"proxy_next_upstream_timeout {s.upstream_read_timeout_ms}ms;",
        ]
    else:
        proxy += ["proxy_next_upstream off;"]
    limit_zone = limit = gate_limit = ""
    if s.rate_limit:
        # Keyed by X-Client-Id; a request without one is keyed by the connection's address
        # instead, so leaving the header out does not escape the limit. The prefixes keep
        # the two namespaces apart (a header value cannot pose as someone's address). A
        # client that sends a new X-Client-Id per request still gets a bucket per request:
        # the known limit of any header-keyed limiter (see README). A venue's gate scans a
        # queue of people, so scans get their own, higher per-device limit: the phones'
        # limit would turn a busy metro gate away.
        limit_zone = (
            "    map $http_x_client_id $refsys_client_key {\n"
            '        "" "addr:$binary_remote_addr";\n'
            '        default "id:$http_x_client_id";\n'
            "    }\n"
            f"    limit_req_zone $refsys_client_key zone=per_client:16m "
            f"rate={s.rate_limit_rps}r/s;\n"
            f"    limit_req_zone $refsys_client_key zone=per_gate:16m "
            f"rate={s.rate_limit_gate_rps}r/s;\n"
            "    limit_req_status 429;\n"
            "    limit_req_log_level info;\n"
        )
        limit = f"            limit_req zone=per_client burst={s.rate_limit_burst} nodelay;\n"
        gate_limit = (
            f"            limit_req zone=per_gate burst={2 * s.rate_limit_gate_rps} nodelay;\n"
        )
    # An IPv6 literal needs brackets in nginx's listen directive.
    listen = f"[{spec.host}]:{spec.port}" if ":" in spec.host else f"{spec.host}:{spec.port}"
    proxy_lines = "".join(f"            {line}\n" for line in proxy)
    retry = s.upstream_retry or s.upstream_timeouts
    # Server-level error pages cover what nginx itself answers; a location that sets its
    # own error_page inherits none of them, so the proxy locations repeat them.
    pages = (
        "        error_page 429 = @limited;\n"
        "        error_page 502 = @bad_gateway;\n"
        "        error_page 504 = @gateway_timeout;\n"
        "        error_page 413 = @too_large;\n"
    )
    refusal = other = ""
    if refusal_retry:
        # A worker's 503 without "X-Refusal: busy" means its own links to PostgreSQL and
        # Redis are down: try it once on a different worker (exactly one other, chosen
        # from $upstream_addr). Shed load (busy) is passed on, not retried: a retry at
        # a second layer would only multiply an overload. Not via proxy_next_upstream, which
        # would count the 503 as a failed attempt: a database outage that makes every
        # worker refuse writes would then mark every worker down.
        refusal = (
            "            proxy_intercept_errors on;\n"
            + "".join(f"    {line}" for line in pages.splitlines(keepends=True))
            + "            error_page 503 = @other_worker;\n"
        )
        other = (
            "        location @other_worker {\n"
            "            if ($upstream_http_x_refusal = busy) {  # shed load: not retried\n"
            "                add_header Retry-After 1 always;\n"
            '                return 503 \'{"error":"server busy: load shed"}\';\n'
            "            }\n"
            "            recursive_error_pages on;\n"
            + "".join(f"    {line}" for line in pages.splitlines(keepends=True))
            + "".join(
                f"            {line}\n" for line in proxy if not line.startswith("proxy_pass ")
            )
            + "            proxy_pass http://$other_workers;\n"
            "        }\n\n"
        )
    errors = (
        _error_location("limited", 429, "rate limited: too many requests from this client", True)
        + (
            _error_location("bad_gateway", 503, "no app worker available: busy or down", True)
            if s.upstream_max_conns or s.upstream_health
            else _error_location("bad_gateway", 502, "bad gateway: no app worker answered", False)
        )
        + _error_location("gateway_timeout", 504, "gateway timeout: app worker too slow", retry)
        + _error_location("too_large", 413, "body too large", False)
        + _parse_error_locations()
    )
    user = "user root root;\n" if spec.run_as_root else ""
    return f"""# generated by reference_system.gateway for {spec.instance} ({s.profile})
{user}daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile {2 * s.gateway_worker_connections + 1024};
pid {run}/nginx.pid;
error_log stderr crit;  # per-request upstream errors would flood the log under overload

events {{
    worker_connections {s.gateway_worker_connections};
    multi_accept on;
}}

http {{
    access_log off;
    server_tokens off;
    default_type application/json;
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    client_max_body_size {s.max_body_bytes};
    client_body_buffer_size {s.max_body_bytes};
    keepalive_timeout 65s;
    keepalive_requests 100000;
    tcp_nodelay on;
{limit_zone}
{upstreams}{_other_worker_map(spec.upstreams) if refusal_retry else ""}
    server {{
        listen {listen} backlog=4096;
        set $request_start $msec;  # once per request: a retry keeps the client's deadline
        # Bodies are small JSON with a Content-Length. A chunked body that fails to parse
        # would get nginx's own HTML 400 in a location that intercepts upstream errors
        # (retry_refusal), where a JSON 400 page would also mask the app's own 400s.
        if ($http_transfer_encoding) {{
            return 411 '{{"error":"length required: send the body with a Content-Length"}}';
        }}
        # nginx passes raw bytes >= 0x80 in the URI on; the app server cannot decode them
        # and would answer a plain-text 400. Percent-encode them instead.
        if ($request_uri ~ "[^\x21-\x7e]") {{
            return 400 '{{"error":"bad request"}}';
        }}
        # The API speaks GET, HEAD and POST; nginx would pass any other token on as a
        # method, which the app server refuses with a plain-text 400.
        if ($request_method !~ ^(GET|HEAD|POST)$) {{
            return 405 '{{"error":"method not allowed"}}';
        }}
{pages}{_parse_error_pages()}
        location = /nginx-health {{
            default_type application/json;
            return 200 '{{"status":"ok","instance":"{spec.instance}"}}';
        }}

        location = /nginx-status {{
            stub_status;
        }}

        location / {{
{limit}{proxy_lines}{refusal}        }}

        location = /v1/scans {{
{gate_limit}{proxy_lines}{refusal}        }}

{other}{errors}    }}
}}
"""


def _other_worker_groups(
    upstreams: tuple[Endpoint, ...], group: Callable[[str, tuple[Endpoint, ...]], str]
) -> str:
    """One upstream group per worker holding every *other* worker: ``app_not_<i>``."""
    return "".join(
        group(f"app_not_{i}", upstreams[:i] + upstreams[i + 1 :]) for i in range(len(upstreams))
    )


def _other_worker_map(upstreams: tuple[Endpoint, ...]) -> str:
    """Map the worker tried last (the end of ``$upstream_addr``) to its ``app_not_<i>``."""
    lines = "".join(
        f'        "~(^|[ ,]){re.escape(str(u))}$" app_not_{i};\n' for i, u in enumerate(upstreams)
    )
    return f"    map $upstream_addr $other_workers {{\n{lines}        default app;\n    }}\n"


def nginx_binary() -> str:
    found = shutil.which("nginx")
    if found:
        return found
    if os.access("/usr/sbin/nginx", os.X_OK):
        return "/usr/sbin/nginx"
    raise FileNotFoundError("nginx: not on PATH and not at /usr/sbin/nginx; install nginx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_system.gateway")
    parser.add_argument("--host", default="127.0.0.1", help="listen address")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True, help="run directory for config, pid, temp files")
    parser.add_argument("--upstreams", required=True, help="HOST:PORT,HOST:PORT,...")
    parser.add_argument("--profile", choices=PROFILES, required=True)
    parser.add_argument("--instance", default="gateway")
    args = parser.parse_args(argv)
    try:
        settings = load(args.profile, os.environ.get(OVERRIDES_ENV))
        upstreams = tuple(
            parse_hostport(u, "--upstreams") for u in args.upstreams.split(",") if u.strip()
        )
        rundir = Path(args.dir).resolve()
        spec = GatewaySpec(
            args.port, rundir, upstreams, args.instance, os.geteuid() == 0, args.host
        )
        text = render(settings, spec)
        binary = nginx_binary()
    except (SettingsError, ValueError, FileNotFoundError) as exc:
        print(f"reference_system.gateway: {exc}", file=sys.stderr)
        return 2
    rundir.mkdir(parents=True, exist_ok=True)
    conf = rundir / "nginx.conf"
    conf.write_text(text)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(binary, [binary, "-e", "stderr", "-p", str(rundir), "-c", str(conf)])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
