"""The containers backend's images: built from the project's Dockerfiles, cached by the
hash of their inputs.

Every image sits on a Debian bookworm base, ``harness-base:bookworm``. Where a registry
is reachable, that is ``debian:bookworm-slim`` pulled and re-tagged; where none is (as on
the project's build machines), it is made here with ``debootstrap --variant=minbase`` and
``docker import``, once, and the set-up says so.

An image's tag is the hash of its inputs (Dockerfile, the files of its build context,
the base image's id), e.g. ``harness-postgres:3f2a...``; ``:latest`` points at the
newest. A rebuild happens only when an input changed::

    python -m harness.images.build [TOPOLOGY...]   # build what is missing or stale, print refs
    ref = ensure("harness-postgres")         # the image ref to run (built if needed)

The harness's own images (PostgreSQL, Redis, Toxiproxy) are declared here; a topology
declares its system's own under ``images:`` (a Dockerfile and a build context, relative
to the topology file), and those are built and cached the same way.

Data directories are cached as images too: :func:`data_template` runs a component's
``data_dir.init`` once in its image and commits the result, so every run's data volume
starts as a copy of it (Docker fills an empty named volume from the image).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ComponentError, PrerequisiteError
from harness.tools import TOXIPROXY, cache_dir, find_binary
from harness.topology import Topology

HERE = Path(__file__).resolve().parent
BASE = "harness-base:bookworm"
PULLED_BASE = "debian:bookworm-slim"
MIRROR = "http://deb.debian.org/debian"
INPUTS_LABEL = "harness.inputs"
TEMPLATE_LABEL = "harness.data-template"


@dataclass(frozen=True)
class ImageSpec:
    """One project image: its Dockerfile, its build context and the files that go in it."""

    name: str
    dockerfile: Path
    context: Path
    files: Callable[[], list[Path]]  # every input file inside ``context``
    extra: Callable[[], dict[str, Path]] = dict  # files from elsewhere, by name in the context
    args: Callable[[], dict[str, str]] = dict  # build arguments besides BASE


def _tree(root: Path) -> Callable[[], list[Path]]:
    def files() -> list[Path]:
        return sorted(
            p
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
        )

    return files


def _toxiproxy_binary() -> dict[str, Path]:
    return {"toxiproxy-server": Path(find_binary(TOXIPROXY))}


def _extra_ca() -> dict[str, str]:
    """The machine's own CA certificates, for builds that fetch over HTTPS (pip)."""
    local = sorted(Path("/usr/local/share/ca-certificates").rglob("*.crt"))
    return {"EXTRA_CA": "".join(p.read_text(errors="replace") for p in local)}


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("harness-postgres", HERE / "postgres/Dockerfile", HERE / "postgres",
                  _tree(HERE / "postgres")),
        ImageSpec("harness-redis", HERE / "redis/Dockerfile", HERE / "redis",
                  _tree(HERE / "redis")),
        ImageSpec("harness-toxiproxy", HERE / "toxiproxy/Dockerfile", HERE / "toxiproxy",
                  _tree(HERE / "toxiproxy"), _toxiproxy_binary),
    )
}  # fmt: skip


def declared(topology: Topology) -> dict[str, ImageSpec]:
    """The images a topology declares under ``images:``."""
    return {
        name: ImageSpec(name, build.dockerfile, build.context, _tree(build.inputs), args=_extra_ca)
        for name, build in topology.images.items()
    }


def spec_of(name: str, topology: Topology | None = None) -> ImageSpec | None:
    """The harness's image `name`, or the one the topology declares by that name."""
    if name in IMAGES:
        return IMAGES[name]
    return declared(topology).get(name) if topology is not None else None


def client():  # -> docker.DockerClient
    """A Docker client for the engine, or a PrerequisiteError saying how to get one."""
    import docker

    try:
        engine = docker.from_env(timeout=120)
        engine.ping()
    except Exception as exc:
        raise PrerequisiteError(no_engine_message(exc)) from None
    return engine


def no_engine_message(exc: BaseException | None = None) -> str:
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    reason = f" ({type(exc).__name__}: {str(exc)[:160]})" if exc else ""
    return (
        f"no Docker engine answers at {where}{reason}. To get one here: as root,"
        " `apt-get install -y docker.io && dockerd --userland-proxy=false"
        " >/var/log/dockerd.log 2>&1 &`"
        " (or run `./dev test` as root, which does it); elsewhere start Docker Desktop"
        " or set DOCKER_HOST. Without an engine use --backend local."
    )


def say(message: str) -> None:
    print(f"[harness images] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _lock(name: str):
    """One builder per image at a time across processes (parallel test runs)."""
    path = cache_dir() / "locks"
    path.mkdir(parents=True, exist_ok=True)
    with open(path / f"{name.replace(':', '_')}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _image_id(engine, ref: str) -> str | None:
    import docker

    try:
        return engine.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None


# --- the base ------------------------------------------------------------------------------


def ensure_base(engine=None) -> str:
    """The id of ``harness-base:bookworm``: pulled where a registry answers, else debootstrapped."""
    engine = engine or client()
    found = _image_id(engine, BASE)
    if found:
        return found
    with _lock(BASE):
        found = _image_id(engine, BASE)
        if found:
            return found
        try:
            image = engine.images.pull(PULLED_BASE)
            image.tag(BASE)
            say(f"base image: pulled {PULLED_BASE} as {BASE}")
        except Exception as exc:
            say(
                f"no registry reachable ({str(exc).splitlines()[0][:100]}): building {BASE}"
                f" locally with debootstrap --variant=minbase bookworm (~30 s, once)"
            )
            _debootstrap_base()
        return _image_id(engine, BASE) or ""


def _debootstrap_base() -> None:
    if shutil.which("debootstrap") is None:
        raise PrerequisiteError(
            f"no registry to pull {PULLED_BASE} from, and debootstrap is missing to build the"
            " base locally: apt-get install -y debootstrap (or ./dev test as root does it)"
        )
    if os.geteuid() != 0:
        raise PrerequisiteError("building the base image with debootstrap needs root")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        result = subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise PrerequisiteError(f"debootstrap failed (exit {result.returncode}):\n{tail}")
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "-", BASE], stdin=tar.stdout, capture_output=True, text=True
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise PrerequisiteError(f"docker import of the base failed: {imported.stderr}")
    say(f"base image {BASE} built in {time.monotonic() - started:.0f} s")


# --- project images ------------------------------------------------------------------------


def inputs_hash(spec: ImageSpec, base_id: str) -> str:
    """Hash of everything the image is built from."""
    digest = hashlib.sha256(f"{spec.name}\0{base_id}\0".encode())
    digest.update(spec.dockerfile.read_bytes())
    for path in spec.files():
        digest.update(str(path.relative_to(spec.context)).encode() + b"\0")
        digest.update(path.read_bytes())
    for name, path in sorted(spec.extra().items()):
        digest.update(name.encode() + b"\0" + path.read_bytes())
    for key, value in sorted(spec.args().items()):
        digest.update(f"{key}={value}".encode())
    return digest.hexdigest()[:16]


def ensure(name: str, engine=None, topology: Topology | None = None) -> str:
    """The ref (``name:<inputs hash>``) of an image, built only if missing or stale."""
    engine = engine or client()
    spec = spec_of(name, topology)
    if spec is None:
        raise KeyError(f"no image {name!r}: neither the harness's nor declared by the topology")
    base_id = ensure_base(engine)
    ref = f"{name}:{inputs_hash(spec, base_id)}"
    if _image_id(engine, ref):
        return ref
    with _lock(name):
        if not _image_id(engine, ref):
            _build(engine, spec, ref)
    return ref


def _build(engine, spec: ImageSpec, ref: str) -> None:
    import docker

    say(f"building {ref} from {spec.dockerfile}")
    started = time.monotonic()
    # a scratch context with exactly the hashed inputs, so the hash and the build agree
    with tempfile.TemporaryDirectory(prefix="harness-ctx-") as context:
        for path in [spec.dockerfile, *spec.files()]:
            target = Path(context) / path.relative_to(spec.context)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        for name, path in spec.extra().items():
            shutil.copy2(path, Path(context) / name)
        try:
            engine.images.build(
                path=context,
                dockerfile=str(spec.dockerfile.relative_to(spec.context)),
                tag=ref,
                buildargs={"BASE": BASE, **spec.args()},
                labels={INPUTS_LABEL: ref.split(":")[1]},
                rm=True,
                forcerm=True,
            )
        except docker.errors.BuildError as exc:
            log = "".join(
                str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log
            )
            tail = "\n".join(log.splitlines()[-25:])
            raise PrerequisiteError(f"building {ref} failed: {exc.msg}\n{tail}") from None
    engine.images.get(ref).tag(spec.name, "latest")
    say(f"built {ref} in {time.monotonic() - started:.0f} s")
    _prune(engine, spec.name, keep=ref)


def _prune(engine, name: str, keep: str) -> None:
    """Remove the stale builds of an image (other input hashes), unless still in use."""
    for image in engine.images.list(name=name, filters={"label": INPUTS_LABEL}):
        for tag in image.tags:
            if tag not in (keep, f"{name}:latest"):
                with contextlib.suppress(Exception):
                    engine.images.remove(tag)


def resolve(image: str, engine=None, topology: Topology | None = None) -> str:
    """The ref to run for a topology's ``image:``: the harness's and the topology's declared
    images are built (cached) here, any other reference is used as is (Docker pulls it if
    a registry answers)."""
    name = image.split(":", 1)[0]
    if spec_of(name, topology) and (":" not in image or image.endswith(":latest")):
        return ensure(name, engine, topology)
    return image


def data_template(
    engine, image_ref: str, init: list[str], prelude: list[str], env: dict[str, str], name: str
) -> str:
    """An image holding ``image_ref`` plus the data directory ``init`` made (cached by hash).

    ``prelude`` is the command that prepares directories and drops to the component's user.
    """
    base_id = _image_id(engine, image_ref) or image_ref
    key = hashlib.sha256("\0".join([base_id, *prelude, *init]).encode()).hexdigest()[:16]
    ref = f"harness-data:{key}"
    if _image_id(engine, ref):
        return ref
    with _lock(ref):
        if _image_id(engine, ref):
            return ref
        started = time.monotonic()
        container = engine.containers.run(
            image_ref, [*prelude, *init], environment=env, detach=True,
            labels={TEMPLATE_LABEL: key}, init=True,
        )  # fmt: skip
        try:
            status = container.wait(timeout=300)
            if status.get("StatusCode") != 0:
                tail = container.logs(tail=20).decode(errors="replace")
                raise ComponentError(name, f"data_dir.init {init!r} exited {status}", tail)
            container.commit(
                repository="harness-data", tag=key, conf={"Labels": {TEMPLATE_LABEL: key}}
            )
        finally:
            container.remove(force=True)
        say(f"{name}: data template {ref} made in {time.monotonic() - started:.1f} s (once)")
    return ref


def main(argv: list[str] | None = None) -> None:
    """Build (or confirm cached) the harness's images and those of each topology given;
    print their refs."""
    from harness.topology import load_topology

    engine = client()
    for name in IMAGES:
        print(ensure(name, engine))
    for path in sys.argv[1:] if argv is None else argv:
        topology = load_topology(path)
        for name in declared(topology):
            print(ensure(name, engine, topology))


if __name__ == "__main__":
    main()
