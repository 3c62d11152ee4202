"""Seed the Kinto example: create Kinto's schema in PostgreSQL (`kinto migrate`), then,
through HAProxy, the bucket and collection the operations use and `--records` records
(`seed-1` ...) for the reads. Only the standard library: it talks to Kinto's HTTP API as
any client does.

    python seed.py --kinto .venv/bin/kinto --postgres 127.0.0.1:5432 \
        --api 127.0.0.1:8080 --records 200
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

BUCKET, COLLECTION = "chaos", "notes"
BATCH = 25  # Kinto's default kinto.batch_max_requests


def request(api: str, method: str, path: str, body: object = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        f"http://{api}{path}",
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or time.monotonic() > deadline:
                raise SystemExit(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from None
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def migrate(kinto: str, postgres: str) -> None:
    """Kinto's schema (storage and permissions) in the database, as `kinto migrate` makes it."""
    url = f"postgresql://postgres@{postgres}/postgres"
    ini = (
        "[app:main]\nuse = egg:kinto\n"
        f"kinto.storage_backend = kinto.core.storage.postgresql\nkinto.storage_url = {url}\n"
        "kinto.permission_backend = kinto.core.permission.postgresql\n"
        f"kinto.permission_url = {url}\n"
        "kinto.cache_backend = kinto.core.cache.memory\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "migrate.ini"
        path.write_text(ini)
        done = subprocess.run(
            [kinto, "migrate", "--ini", str(path)], capture_output=True, text=True
        )
    if done.returncode != 0:
        raise SystemExit(f"kinto migrate failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinto", required=True, help="the kinto command of Kinto's virtualenv")
    ap.add_argument("--postgres", required=True, help="host:port of PostgreSQL")
    ap.add_argument("--api", required=True, help="host:port of Kinto (through HAProxy)")
    ap.add_argument("--records", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1, help="accepted for the harness; unused")
    args = ap.parse_args()
    migrate(args.kinto, args.postgres)
    request(args.api, "PUT", f"/v1/buckets/{BUCKET}", {"data": {}})
    request(args.api, "PUT", f"/v1/buckets/{BUCKET}/collections/{COLLECTION}", {"data": {}})
    records = f"/buckets/{BUCKET}/collections/{COLLECTION}/records"
    for first in range(1, args.records + 1, BATCH):
        batch = [
            {
                "method": "PUT",
                "path": f"{records}/seed-{n}",
                "body": {"data": {"title": f"seed {n}"}},
            }
            for n in range(first, min(first + BATCH, args.records + 1))
        ]
        answer = request(args.api, "POST", "/v1/batch", {"requests": batch})
        responses = answer.get("responses")
        statuses = {r.get("status") for r in responses} if isinstance(responses, list) else {None}
        if not statuses <= {200, 201}:
            raise SystemExit(f"seeding records answered {sorted(statuses)}")


if __name__ == "__main__":
    sys.exit(main())
