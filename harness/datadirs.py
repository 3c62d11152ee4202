"""Data directories from cached templates: run a component's ``data_dir.init`` once per
machine, then give every run its own copy (for PostgreSQL: ``initdb`` ~1 s once, a copy
on tmpfs well under 0.1 s after).

Templates live in ``<base>/templates/<key>/data``, where the key hashes the rendered
init command and the identity of its binary; a lock file makes concurrent first runs
build a template once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from harness.errors import ComponentError

_PLACEHOLDER_DIR = Path("/__data_dir__")


def template_key(init: list[str]) -> str:
    """Hash of the init command (with the data dir abstracted) and its binary's identity."""
    digest = hashlib.sha256("\0".join(init).encode())
    try:
        st = os.stat(init[0])
        digest.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    except OSError:
        pass
    return digest.hexdigest()[:16]


def prepare(
    name: str,
    init: list[str] | None,
    render_init,
    dest: Path,
    templates: Path,
    owner: tuple[int, int] | None,
    env: dict[str, str],
) -> float | None:
    """Create ``dest`` as a fresh data directory; return the seconds spent building a
    template (None when a cached one was copied or no init is declared).

    ``render_init(data_dir)`` renders the init command for a given data directory.
    """
    if not init:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
        if owner:
            os.chown(dest, *owner)
        return None
    key = template_key(render_init(_PLACEHOLDER_DIR))
    templates.mkdir(mode=0o755, parents=True, exist_ok=True)
    if owner and templates.stat().st_mode & 0o005 != 0o005:
        templates.chmod(0o755)  # the init command runs as ``owner`` and must reach its dir
    built: float | None = None
    with open(templates / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        template = templates / key
        if not (template / "ready").exists():
            built = _build(name, render_init, template, owner, env)
    subprocess.run(["cp", "-a", str(template / "data"), str(dest)], check=True)
    return built


def _build(name, render_init, template: Path, owner, env) -> float:
    import time

    started = time.monotonic()
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(mode=0o755, parents=True)
    if owner:
        os.chown(template, *owner)
    command = render_init(template / "data")
    kwargs = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
    result = subprocess.run(
        command,
        cwd=template,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=300,
        **kwargs,
    )
    if result.returncode != 0:
        shutil.rmtree(template, ignore_errors=True)
        tail = "\n".join(result.stdout.decode(errors="replace").splitlines()[-20:])
        raise ComponentError(name, f"data_dir.init {command!r} exited {result.returncode}", tail)
    (template / "ready").write_text("")
    return time.monotonic() - started
