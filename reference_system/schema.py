"""Schema: the PostgreSQL tables of the system of record (idempotent DDL).

``people`` carries each person's precomputed colour with a ``version`` that increases on
every change (the cache orders itself by it) and a denormalised copy of the latest test.
``scans`` and ``results`` are keyed by the client-chosen ids, so retries are idempotent.
The ``*_pristine`` tables hold the freshly seeded state for a fast reset.
"""

DDL = """
CREATE TABLE IF NOT EXISTS people (
    person_id    integer PRIMARY KEY,
    colour       text NOT NULL CHECK (colour IN ('green', 'yellow', 'red')),
    status_asof  timestamptz NOT NULL,
    last_test_at timestamptz,
    last_result  text,
    version      bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS venues (
    venue_id integer PRIMARY KEY,
    name     text NOT NULL,
    district integer NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    sample_id   text PRIMARY KEY,
    person_id   integer NOT NULL,
    result      text NOT NULL CHECK (result IN ('positive', 'negative')),
    at          timestamptz NOT NULL,
    ingested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS results_person_at ON results (person_id, at DESC);
CREATE TABLE IF NOT EXISTS scans (
    scan_id     text PRIMARY KEY,
    person_id   integer NOT NULL,
    venue_id    integer NOT NULL,
    at          timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS scans_person_at ON scans (person_id, at DESC);
CREATE TABLE IF NOT EXISTS seed_meta (
    id      integer PRIMARY KEY CHECK (id = 1),
    people  integer NOT NULL,
    venues  integer NOT NULL,
    seed    bigint NOT NULL
);
CREATE UNLOGGED TABLE IF NOT EXISTS people_pristine (LIKE people);
CREATE UNLOGGED TABLE IF NOT EXISTS results_pristine (LIKE results);
"""

TABLES = ("people", "venues", "results", "scans")
