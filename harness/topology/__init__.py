"""Topology as data: the components of a system and the named links between them.

A topology is what a backend starts. It is written in YAML (the reference system's is
``reference_system/topology.yaml``) and loaded into frozen dataclasses::

    name: shop
    params: {workers: 2}                 # defaults, overridable per run
    profiles: {small: {workers: 1}}      # named sets of params
    components:
      db:
        command: ["${bin:postgres}", -D, "${data_dir}", -p, "${port}", -k, "${dir}"]
        user: postgres                   # used when the harness runs as root
        data_dir: {init: ["${bin:initdb}", -D, "${data_dir}", -A, trust, -U, postgres]}
        probe: {postgres: SELECT 1}
      web:
        replicas: "${param:workers}"     # web-1, web-2 (naming: letters gives web-a, web-b)
        command: ["${python}", -m, myapp, --port, "${port}", --db, "${link:db}"]
        env: {MYAPP_MODE: "${param:mode}"}
        after: [db]                      # started once db is ready (default: all at once)
        probe: {http: /healthz}
      lb:
        command: [haproxy, -f, "${dir}/haproxy.cfg"]
        files: {haproxy.cfg: haproxy.cfg.tmpl}   # rendered into its run directory first
        probe: {tcp: true}
    links:
      - {from: client, to: lb}           # the client edge
      - {from: lb, to: web}              # lb->web-1, lb->web-2
      - {from: web, to: db}              # web-1->db, web-2->db
    seed: ["${python}", -m, myapp.seed, --db, "${addr:db}", --seed, "${seed}"]
    reset: ["${python}", -m, myapp.seed, --db, "${addr:db}", --seed, "${seed}", --reset]

Every link, including the client edge, is one Toxiproxy proxy, so any fault can be put
on any link. Components reach each other only through links: ``${link:db}`` renders as
the ``host:port`` of the proxy for ``web-1->db``.

Placeholders (rendered by a backend once ports are known): ``${port}`` ``${host}``
``${dir}`` (the component's run directory) ``${data_dir}`` ``${name}`` ``${python}``
``${root}`` (the topology file's directory) ``${seed}`` ``${param:NAME}`` (JSON for
lists and mappings) ``${link:TARGET}`` ``${links:GROUP}`` (comma-separated)
``${addr:COMPONENT}`` (direct, for seeding and checks) ``${bin:NAME}`` (a binary found
on PATH or in PostgreSQL's bin directory) ``${secret:NAME}`` (a random secret made for
this running system, the same wherever it appears: a signing key, a password).
``$${`` is a literal ``${``.

**Config files.** ``files: {NAME: TEMPLATE}`` names templates (paths relative to the
topology file; ``${param:NAME}`` may choose one per profile) rendered with the same
placeholders into NAME in the component's run directory (``${dir}``) before it starts,
for software configured by a file. One more
placeholder exists there: a line holding ``${each:GROUP}`` is written once per member of
GROUP the component links to, ``${each:GROUP}`` being that link's ``host:port`` and
``${each:GROUP.name}``, ``.index``, ``.host``, ``.port`` its parts::

    backend kinto
        server ${each:kinto.name} ${each:kinto} check      # one line per kinto replica

Templates are read and checked when the topology loads: a placeholder that cannot render
is an error naming the template's line.

``lazyfs: [spool]`` puts directories of a component's run directory (``data`` is its
``${data_dir}``) on LazyFS, a filesystem that keeps written bytes in memory until
fsync, so the ``lose_unsynced`` fault can discard them as a power loss would;
``lazyfs: {dirs: [spool], when: "${param:NAME}"}`` only when that parameter is true.

``reset:`` (optional, like ``seed:``) brings a used system back to its freshly seeded
state quickly, so a started system can be reused between runs (a fault search runs many
short examples on one system); without it a reused system is seeded again in full.

Modules: ``model`` (the dataclasses), ``load`` (the file), ``placeholders`` (the grammar
and rendering), ``files`` (config file templates).
"""

from harness.topology.files import render_file
from harness.topology.load import (
    REFERENCE,
    SUT_KEYS,
    load_node,
    load_topology,
    profile_names,
    with_params,
)
from harness.topology.model import (
    CLIENT,
    DEFAULT_PROFILE,
    PROBE_KINDS,
    Component,
    DataDir,
    FileTemplate,
    ImageBuild,
    Link,
    Probe,
    ProbeKind,
    Topology,
)
from harness.topology.placeholders import RenderContext, component_dir, data_dir_of, render

__all__ = [
    "CLIENT",
    "DEFAULT_PROFILE",
    "PROBE_KINDS",
    "REFERENCE",
    "SUT_KEYS",
    "Component",
    "DataDir",
    "FileTemplate",
    "ImageBuild",
    "Link",
    "Probe",
    "ProbeKind",
    "RenderContext",
    "Topology",
    "component_dir",
    "data_dir_of",
    "load_node",
    "load_topology",
    "profile_names",
    "render",
    "render_file",
    "with_params",
]
