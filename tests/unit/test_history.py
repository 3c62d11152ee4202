"""The history: ops, JSON-lines round trip, percentiles, counts and windows."""

from __future__ import annotations

import pytest

from harness.history import (
    NEVER_SENT,
    History,
    HistoryWriter,
    Op,
    counts,
    load,
    percentiles,
    quantile,
    windows,
)


def op(i: int, **kw) -> Op:
    base = dict(
        id=i,
        client_id=f"p{i}",
        client_class="good",
        op="show_code",
        args={"person": i},
        intended=i * 0.1,
        sent=i * 0.1 + 0.001,
        completed=i * 0.1 + 0.010,
        outcome="ok",
        status=200,
    )
    base.update(kw)
    return Op(**base)


def sample_ops() -> list[Op]:
    return [
        op(1, value={"colour": "green", "degraded": False}),
        op(
            2,
            op="scan",
            args={"scan_id": "s-1", "person": 5, "venue": 7},
            outcome="info",
            status=None,
            error="timeout",
        ),
        op(
            3,
            op="scan",
            args={"scan_id": "s-1", "person": 5, "venue": 7},
            attempt=2,
            cause="retry",
            parent=2,
            root=2,
        ),
        op(4, op="lookup", args={"person": 9}, outcome="fail", status=503, target=1),
        op(
            5,
            op="ingest",
            args={"results": [{"sample_id": "r1", "person_id": 3, "result": "positive"}]},
            client_id="lab2",
        ),
        op(6, sent=None, outcome="fail", status=None, error=NEVER_SENT),
    ]


def test_jsonl_round_trip(tmp_path):
    ops = sample_ops()
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path, buffer_ops=2) as w:
        for o in ops:
            w.append(o)
    assert w.count == len(ops)
    assert path.read_bytes().count(b"\n") == len(ops)
    assert load(path) == ops


def test_a_gz_history_is_gzipped_and_reads_back_the_same(tmp_path):
    import gzip

    ops = sample_ops() * 50
    plain, packed = tmp_path / "h.jsonl", tmp_path / "h.jsonl.gz"
    History(ops).write(plain)
    History(ops).write(packed)
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert packed.stat().st_size < plain.stat().st_size / 4
    assert load(packed) == ops


def test_in_memory_history_writes_the_same(tmp_path):
    h = History(sample_ops())
    h.write(tmp_path / "h.jsonl")
    assert load(tmp_path / "h.jsonl") == list(h)
    assert len(h) == 6


def test_load_names_file_and_line_on_bad_input(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(sample_ops()[0].to_json() + b'\n{"id": 2}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: not a history op"):
        load(path)


def test_latency_is_from_intended_and_none_when_never_sent():
    o = op(1, intended=1.0, sent=1.5, completed=1.6)
    assert o.latency == pytest.approx(0.6)
    assert o.lateness == pytest.approx(0.5)
    n = op(2, sent=None, outcome="fail", error=NEVER_SENT)
    assert n.latency is None and n.lateness is None


def test_percentiles_are_nearest_rank():
    ops = [op(i, intended=0.0, sent=0.0, completed=(i + 1) / 1000) for i in range(1000)]
    p = percentiles(ops, (50, 99))
    assert p[50] == pytest.approx(0.500)
    assert p[99] == pytest.approx(0.990)
    assert quantile([1.0, 2.0, 3.0, 4.0], 50) == 2.0 and quantile([1.0, 2.0, 3.0, 4.0], 99) == 4.0
    assert quantile([7.0], 1) == 7.0
    assert percentiles(ops, (50,), where=lambda o: o.op == "scan") == {}
    late = percentiles(ops, (99,), value=lambda o: o.lateness)
    assert late[99] < 1e-5


def test_never_sent_ops_are_left_out_of_latency_but_counted():
    ops = sample_ops()
    assert len(percentiles(ops, (100,))) == 1 and sum(o.latency is not None for o in ops) == 5
    assert counts(ops, by=("error",))[(NEVER_SENT,)] == 1


def test_counts_by_op_class_and_outcome():
    c = counts(sample_ops())
    assert c[("scan", "info")] == 1 and c[("scan", "ok")] == 1
    assert c[("lookup", "fail")] == 1 and c[("show_code", "ok")] == 1
    assert sum(c.values()) == 6
    c2 = counts(sample_ops(), by=("client_class",), where=lambda o: o.outcome == "ok")
    assert c2 == {("good",): 3}


def test_windows_group_by_time():
    ops = [op(i, intended=i * 0.25, sent=i * 0.25, completed=i * 0.25 + 0.01) for i in range(8)]
    w = windows(ops, 1.0)
    assert list(w) == [0.0, 1.0]
    assert w[0.0][("ok",)] == 4 and w[1.0][("ok",)] == 4
    with pytest.raises(ValueError, match="width"):
        windows(ops, 0)
