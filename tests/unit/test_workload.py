"""The workload schedule: determinism, rates, mix, drawn values, client classes, follow-ups,
validation."""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter

import pytest

from harness.generators import Generator
from harness.operations import Mix
from harness.workload import (
    Abuser,
    Arrival,
    Buggy,
    ClientClass,
    Constant,
    Good,
    Impatient,
    Ramp,
    Series,
    Step,
    Workload,
    WorkloadError,
    rps,
    x,
)
from harness.workload.spec import with_values
from tests.support import operations, reference_operations

ONE_GOOD = (ClientClass("good", 1.0, Good()),)
OPS = reference_operations()


def wl(profile, **kw) -> Workload:
    kw.setdefault("operations", OPS)
    return Workload(profile, **kw)


def within(n: int, expected: float, sigmas: float = 5.0) -> bool:
    """A Poisson count lies within `sigmas` standard deviations of its mean."""
    return abs(n - expected) <= sigmas * math.sqrt(max(expected, 1.0))


def test_same_seed_same_arrivals_and_different_seed_differs():
    def run(seed: int):
        return list(wl(Constant(rps(2000), 2.0), seed=seed).schedule().arrivals())

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert len(a) > 3000
    assert [(e.intended, e.args) for e in a] != [(e.intended, e.args) for e in c]


def test_schedule_is_restartable():
    s = wl(Constant(rps(500), 1.0), seed=3).schedule()
    assert list(s.arrivals()) == list(s.arrivals())


def test_arrivals_are_time_ordered_indexed_and_within_duration():
    w = wl(
        Series((Constant(rps(300), 1.0), Ramp(rps(300), rps(900), 1.0))),
        clients=(*ONE_GOOD, ClientClass("abuse", 0.0, Abuser(identities=2, rate=rps(200)))),
        seed=1,
    )
    s = w.schedule()
    arr = list(s.arrivals())
    times = [a.intended for a in arr]
    assert times == sorted(times)
    assert [a.index for a in arr] == list(range(len(arr)))
    assert times[0] >= 0 and times[-1] < s.duration == 2.0


@pytest.mark.parametrize(
    "profile, expected",
    [
        (Constant(rps(1000), 5.0), 5000),
        (Ramp(rps(0), rps(2000), 5.0), 5000),
        (Ramp(rps(2000), rps(0), 5.0), 5000),
        (Step(rps(100), rps(1900), at=2.5, duration=5.0), 250 + 4750),
    ],
)
def test_counts_match_the_rate_profile(profile, expected):
    s = wl(profile, clients=ONE_GOOD, seed=11, followups=False).schedule()
    assert s.expected() == pytest.approx(expected)
    n = sum(1 for _ in s.arrivals())
    assert within(n, expected), (n, expected)


def test_ramp_shape_second_half_carries_three_quarters():
    s = wl(Ramp(rps(0), rps(4000), 4.0), clients=ONE_GOOD, seed=5, followups=False).schedule()
    arr = list(s.arrivals())
    late = sum(1 for a in arr if a.intended >= 2.0)
    assert within(late, 6000) and within(len(arr) - late, 2000)


def test_step_jumps_at_its_time():
    s = wl(Step(rps(200), rps(2000), at=1.0, duration=2.0), clients=ONE_GOOD, followups=False)
    arr = list(s.schedule().arrivals())
    before = sum(1 for a in arr if a.intended < 1.0)
    assert within(before, 200) and within(len(arr) - before, 2000)


def test_relative_rates_resolve_against_capacity_and_need_it():
    w = wl(Constant(x(0.5), 2.0), clients=ONE_GOOD, seed=2, followups=False)
    s = w.schedule(capacity=1000.0)
    assert s.rate_at(1.0) == 500.0
    assert within(sum(1 for _ in s.arrivals()), 1000)
    with pytest.raises(WorkloadError, match="capacity"):
        w.schedule()


def test_compression_shortens_the_profile_not_the_rates():
    w = wl(Series((Constant(rps(100), 10.0), Constant(rps(1000), 10.0))), seed=4, followups=False)
    s = w.schedule(compression=10)
    assert s.duration == pytest.approx(2.0)
    assert s.rate_at(0.5) == 100 and s.rate_at(1.5) == 1000
    assert within(sum(1 for _ in s.arrivals()), 1100)
    # behaviours (client timeouts) are untouched by compression
    assert all(a.behaviour == Impatient() for a in s.arrivals() if a.client_class == "impatient")


def test_mix_shares_and_the_values_each_operation_draws():
    ops = reference_operations(people=1000, venues=50)
    mix = Mix.of(show_code=0.5, scan=0.3, lookup=0.15, ingest=0.05)
    s = wl(Constant(rps(10000), 2.0), operations=ops, mix=mix, clients=ONE_GOOD, followups=False)
    arr = list(s.schedule().arrivals())
    n = len(arr)
    by_op = Counter(a.op for a in arr)
    for op_name in mix.ops:
        p = mix.share(op_name)
        assert abs(by_op[op_name] - n * p) <= 5 * math.sqrt(n * p * (1 - p)), (op_name, by_op)
    for a in arr:
        if a.op == "show_code":
            assert set(a.args) == {"person"} and 1 <= a.args["person"] <= 1000
            assert a.client_id == f"p{a.args['person']}"
        elif a.op == "scan":
            assert set(a.args) == {"person", "scan_id", "venue"}
            assert 1 <= a.args["venue"] <= 50 and a.client_id == f"g{a.args['venue']}"
        elif a.op == "ingest":
            assert len(a.args["results"]) == 20 and a.client_id.startswith("lab")
    scan_ids = [a.args["scan_id"] for a in arr if a.op == "scan"]
    assert len(scan_ids) == len(set(scan_ids))
    samples = [r["sample_id"] for a in arr if a.op == "ingest" for r in a.args["results"]]
    assert len(samples) == len(set(samples))


def test_sequences_start_with_the_tag_and_name_the_class():
    s = wl(Constant(rps(2000), 1.0), mix=Mix.of(scan=1), clients=ONE_GOOD, tag="run7")
    ids = [a.args["scan_id"] for a in s.schedule().arrivals()]
    assert ids[:2] == ["run7-good-s1", "run7-good-s2"]


def test_a_sequence_with_a_cycle_wraps_and_the_yaml_says_so():
    from harness.generators import parse_generator
    from harness.validate import Node

    gen = parse_generator(
        Node({"sequence": "s", "cycle": 3}, "x.yaml", "values.scan_id"), "scan_id"
    )
    ops = with_values(OPS, {"scan_id": gen})
    s = wl(Constant(rps(2000), 1.0), operations=ops, mix=Mix.of(scan=1), clients=ONE_GOOD, tag="t")
    ids = [a.args["scan_id"] for a in s.schedule().arrivals()][:7]
    assert ids == [
        "t-good-s1",
        "t-good-s2",
        "t-good-s3",
        "t-good-s1",
        "t-good-s2",
        "t-good-s3",
        "t-good-s1",
    ]
    with pytest.raises(Exception, match="cycle"):
        parse_generator(Node({"sequence": "s", "cycle": 0}, "x.yaml", "v.id"), "id")


def _venues(ops, s: float) -> Counter:
    gen = Generator("venue", "zipf", {"low": 1, "high": 100, "s": s, "shuffle": True})
    ops = with_values(ops, {"venue": gen})
    w = wl(Constant(rps(20000), 1.0), operations=ops, mix=Mix.of(scan=1), clients=ONE_GOOD)
    return Counter(a.args["venue"] for a in w.schedule().arrivals())


def test_venue_popularity_is_zipf_and_uniform_at_s_zero():
    c = _venues(OPS, 1.0)
    ranked = [n for _, n in c.most_common()]
    harmonic = sum(1 / k for k in range(1, 101))
    total = sum(ranked)
    assert ranked[0] == pytest.approx(total / harmonic, rel=0.1)  # top venue ~19%
    assert ranked[1] == pytest.approx(total / harmonic / 2, rel=0.15)
    assert len(c) > 90
    flat = _venues(OPS, 0.0)
    assert len(flat) == 100
    assert all(within(n, sum(flat.values()) / 100) for n in flat.values())


def test_client_classes_share_arrivals_and_carry_behaviours():
    clients = (
        ClientClass("good", 0.7, Good()),
        ClientClass("impatient", 0.2, Impatient()),
        ClientClass("buggy", 0.1, Buggy()),
    )
    s = wl(Constant(rps(10000), 1.0), clients=clients, seed=9, followups=False).schedule()
    arr = list(s.arrivals())
    c = Counter(a.client_class for a in arr)
    for cls in clients:
        p = cls.share
        assert abs(c[cls.name] - len(arr) * p) <= 5 * math.sqrt(len(arr) * p * (1 - p))
    assert all(
        a.behaviour == next(k.behaviour for k in clients if k.name == a.client_class) for a in arr
    )
    assert len({a.seed for a in arr}) > 0.99 * len(arr)


def test_abuser_with_fixed_rate_sends_its_own_stream_from_few_identities():
    clients = (*ONE_GOOD, ClientClass("abuser", 0.0, Abuser(identities=3, rate=rps(500))))
    s = wl(Constant(rps(100), 4.0), clients=clients, seed=1, followups=False).schedule()
    arr = list(s.arrivals())
    ab = [a for a in arr if a.client_class == "abuser"]
    assert within(len(ab), 2000) and within(len(arr) - len(ab), 400)
    assert {a.client_id for a in ab} == {"abuser-1", "abuser-2", "abuser-3"}
    assert within(sum(1 for a in ab if a.intended < 2.0), 1000)


def test_abuser_with_a_share_takes_part_of_the_profile():
    clients = (ClientClass("good", 0.5), ClientClass("abuser", 0.5, Abuser(identities=2)))
    s = wl(Constant(rps(1000), 1.0), clients=clients, followups=False).schedule()
    ab = [a for a in s.arrivals() if a.client_class == "abuser"]
    assert within(len(ab), 500) and {a.client_id for a in ab} == {"abuser-1", "abuser-2"}


def test_an_operation_without_a_client_template_gives_each_arrival_its_own_id():
    ops = operations({"operations": {"get": {"path": "/x"}}})
    arr = list(Workload(Constant(rps(1000), 1.0), ops, clients=ONE_GOOD).schedule().arrivals())
    assert len({a.client_id for a in arr}) == len(arr)


def test_good_backoff_is_full_jitter_and_capped():
    g = Good(backoff_base=0.1, backoff_cap=0.3)
    rng = random.Random(0)
    for retry, bound in [(1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)]:
        vals = [g.backoff(retry, rng) for _ in range(2000)]
        assert min(vals) >= 0 and max(vals) <= bound
        assert max(vals) > 0.9 * bound and min(vals) < 0.1 * bound


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: rps(-1), "rate must be >= 0"),
        (lambda: Constant(rps(1), -1.0), r"Constant.duration"),
        (lambda: Step(rps(1), rps(2), at=5.0, duration=2.0), r"Step.at"),
        (lambda: ClientClass("a", 0.1, Abuser(rate=rps(5))), "share must be 0"),
        (lambda: wl(Constant(rps(1), 1.0), clients=ONE_GOOD * 2), "unique"),
        (lambda: wl(Constant(rps(1), 1.0)).schedule(compression=0), "compression"),
        (lambda: wl(Constant(rps(1), 1.0), mix=Mix.of(nothing=1)), "undeclared"),
    ],
)
def test_errors_say_what_was_wrong(make, match):
    with pytest.raises(WorkloadError, match=match):
        make()


# --------------------------------------------------------------------------- follow-ups

# Many batches with many positives, so every property is exercised many times.
LABS = operations(
    {
        "values": {"person": {"int": [1, 100000]}},
        "operations": {
            "show": {"path": "/code/${person}", "client": "p${person}"},
            "ingest": {
                "method": "POST",
                "path": "/results",
                "values": {
                    "results": {
                        "list": 10,
                        "item": {
                            "person_id": {"int": [1, 100000]},
                            "result": {"choice": ["positive", "negative"], "weights": [0.2, 0.8]},
                        },
                    }
                },
                "body": {"results": "${results}"},
                "followups": [
                    {
                        "op": "show",
                        "each": "results",
                        "where": {"result": "positive"},
                        "values": {"person": "${item.person_id}"},
                        "count": 2,
                        "delay": ["200ms", "2s"],
                    }
                ],
            },
        },
        "mix": {"show": 0.8, "ingest": 0.2},
    }
)


def strip(a: Arrival) -> tuple:
    return (a.intended, a.client_id, a.client_class, a.op, repr(a.args), a.seed)


def split(w: Workload) -> tuple[list[Arrival], list[Arrival], list[Arrival]]:
    """(all arrivals, those of the same workload without follow-ups, the follow-ups)."""
    arr = list(w.schedule().arrivals())
    base = list(dataclasses.replace(w, followups=False).schedule().arrivals())
    known = {strip(a) for a in base}
    return arr, base, [a for a in arr if strip(a) not in known]


def positives(a: Arrival) -> set[int]:
    return {r["person_id"] for r in a.args["results"] if r["result"] == "positive"}


def test_followups_come_for_each_matching_item_after_the_operation():
    w = Workload(Constant(rps(500), 6.0), LABS, clients=ONE_GOOD, seed=3)
    arr, base, extra = split(w)
    # The other arrivals are untouched, in the same order; follow-ups are only added.
    added = {a.index for a in extra}
    assert [strip(a) for a in arr if a.index not in added] == [strip(a) for a in base]
    ingests = [a for a in base if a.op == "ingest" and positives(a)]
    assert len(ingests) > 50
    for r in extra:
        assert r.op == "show" and r.client_id == f"p{r.args['person']}"
        assert r.client_class == "good" and r.behaviour == Good()
        assert any(
            r.args["person"] in positives(i) and 0.2 <= r.intended - i.intended <= 2.0
            for i in ingests
        ), r
    assert len(extra) >= 2 * sum(len(positives(i)) for i in ingests if i.intended < 4.0)


def test_followups_are_deterministic_ordered_and_in_real_time():
    def run(seed: int) -> list[Arrival]:
        w = Workload(Constant(rps(400), 4.0), LABS, seed=seed)
        return list(w.schedule(compression=2.0).arrivals())

    a, b, c = run(5), run(5), run(6)
    assert a == b and a != c
    times = [e.intended for e in a]
    assert times == sorted(times)
    assert [e.index for e in a] == list(range(len(a)))
    assert times[-1] < 2.0  # follow-ups past the (compressed) end are dropped
    _, _, extra = split(Workload(Constant(rps(400), 4.0), LABS, seed=5))
    assert extra and max(e.intended for e in extra) > 2.5  # delays are not compressed


def test_followups_come_from_people_classes_not_abusers():
    clients = (
        ClientClass("good", 0.6, Good()),
        ClientClass("impatient", 0.3, Impatient()),
        ClientClass("abuser", 0.1, Abuser(identities=2)),
        ClientClass("flood", 0.0, Abuser(identities=1, rate=rps(100))),
    )
    _, _, extra = split(Workload(Constant(rps(500), 6.0), LABS, clients=clients, seed=2))
    by_class = Counter(r.client_class for r in extra)
    assert set(by_class) == {"good", "impatient"}
    assert by_class["good"] > by_class["impatient"] > 0


def test_the_reference_defaults_give_rereads_in_a_short_run():
    # 15 s at 200 requests/s, normal-day mix (2% ingest), batches of 20, 2% positive.
    for seed in range(3):
        _, _, extra = split(wl(Constant(rps(200), 15.0), seed=seed))
        assert 20 <= len(extra) <= 100, (seed, len(extra))
        assert all(a.op == "show_code" and a.client_id.startswith("p") for a in extra)
