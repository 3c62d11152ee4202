"""The workload schedule: determinism, rates, mix, arguments, client classes, re-reads
after positive results, validation."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import pytest

from harness.history import Op
from harness.invariants import no_false_green
from harness.invariants.final_state import FinalState
from harness.workload import (
    OPS,
    Abuser,
    Arrival,
    Buggy,
    ClientClass,
    Constant,
    Good,
    Impatient,
    Ingest,
    Mix,
    Population,
    Ramp,
    Reread,
    Scan,
    Sequence,
    ShowCode,
    Step,
    Workload,
    WorkloadError,
    rps,
    x,
)

ONE_GOOD = (ClientClass("good", 1.0, Good()),)


def within(n: int, expected: float, sigmas: float = 5.0) -> bool:
    """A Poisson count lies within `sigmas` standard deviations of its mean."""
    return abs(n - expected) <= sigmas * math.sqrt(max(expected, 1.0))


def test_same_seed_same_arrivals_and_different_seed_differs():
    def run(seed: int):
        wl = Workload(Constant(rps(2000), 2.0), seed=seed)
        return list(wl.schedule().arrivals())

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert len(a) > 3000
    assert [(e.intended, e.args) for e in a] != [(e.intended, e.args) for e in c]


def test_schedule_is_restartable():
    s = Workload(Constant(rps(500), 1.0), seed=3).schedule()
    assert list(s.arrivals()) == list(s.arrivals())


def test_arrivals_are_time_ordered_indexed_and_within_duration():
    wl = Workload(
        Sequence((Constant(rps(300), 1.0), Ramp(rps(300), rps(900), 1.0))),
        clients=(*ONE_GOOD, ClientClass("abuse", 0.0, Abuser(identities=2, rate=rps(200)))),
        seed=1,
    )
    s = wl.schedule()
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
    s = Workload(profile, clients=ONE_GOOD, seed=11).schedule()
    assert s.expected() == pytest.approx(expected)
    n = sum(1 for _ in s.arrivals())
    assert within(n, expected), (n, expected)


def test_ramp_shape_second_half_carries_three_quarters():
    s = Workload(Ramp(rps(0), rps(4000), 4.0), clients=ONE_GOOD, seed=5).schedule()
    arr = list(s.arrivals())
    late = sum(1 for a in arr if a.intended >= 2.0)
    assert within(late, 6000) and within(len(arr) - late, 2000)


def test_step_jumps_at_its_time():
    s = Workload(Step(rps(200), rps(2000), at=1.0, duration=2.0), clients=ONE_GOOD).schedule()
    arr = list(s.arrivals())
    before = sum(1 for a in arr if a.intended < 1.0)
    assert within(before, 200) and within(len(arr) - before, 2000)


def test_relative_rates_resolve_against_capacity_and_need_it():
    wl = Workload(Constant(x(0.5), 2.0), clients=ONE_GOOD, seed=2)
    s = wl.schedule(capacity=1000.0)
    assert s.rate_at(1.0) == 500.0
    assert within(sum(1 for _ in s.arrivals()), 1000)
    with pytest.raises(WorkloadError, match="capacity"):
        wl.schedule()


def test_compression_shortens_the_profile_not_the_rates():
    wl = Workload(Sequence((Constant(rps(100), 10.0), Constant(rps(1000), 10.0))), seed=4)
    s = wl.schedule(compression=10)
    assert s.duration == pytest.approx(2.0)
    assert s.rate_at(0.5) == 100 and s.rate_at(1.5) == 1000
    assert within(sum(1 for _ in s.arrivals()), 1100)
    # behaviours (client timeouts) are untouched by compression
    assert all(a.behaviour == Impatient() for a in s.arrivals() if a.client_class == "impatient")


def test_mix_shares_and_args():
    mix = Mix(show_code=0.5, scan=0.3, lookup=0.15, ingest=0.05)
    pop = Population(people=1000, venues=50, batch_size=5)
    s = Workload(Constant(rps(10000), 2.0), mix=mix, population=pop, clients=ONE_GOOD).schedule()
    arr = list(s.arrivals())
    n = len(arr)
    by_op = Counter(a.op for a in arr)
    for op in OPS:
        p = getattr(mix, op)
        assert abs(by_op[op] - n * p) <= 5 * math.sqrt(n * p * (1 - p)), (op, by_op)
    for a in arr:
        if a.op == "show_code":
            assert isinstance(a.args, ShowCode) and 1 <= a.args.person_id <= 1000
            assert a.client_id == f"p{a.args.person_id}"
        elif a.op == "scan":
            assert isinstance(a.args, Scan) and 1 <= a.args.venue_id <= 50
        elif a.op == "ingest":
            assert isinstance(a.args, Ingest) and len(a.args.results) == 5
            assert a.client_id.startswith("lab")
    scan_ids = [a.args.scan_id for a in arr if a.op == "scan"]
    assert len(scan_ids) == len(set(scan_ids))
    samples = [r.sample_id for a in arr if a.op == "ingest" for r in a.args.results]
    assert len(samples) == len(set(samples))


def test_venue_popularity_is_zipf():
    pop = Population(venues=100, zipf_s=1.0)
    mix = Mix(show_code=0, scan=1, lookup=0, ingest=0)
    s = Workload(Constant(rps(20000), 1.0), mix=mix, population=pop, clients=ONE_GOOD).schedule()
    c = Counter(a.args.venue_id for a in s.arrivals())
    ranked = [n for _, n in c.most_common()]
    harmonic = sum(1 / k for k in range(1, 101))
    total = sum(ranked)
    assert ranked[0] == pytest.approx(total / harmonic, rel=0.1)  # top venue ~19%
    assert ranked[1] == pytest.approx(total / harmonic / 2, rel=0.15)
    assert len(c) > 90


def test_uniform_popularity_when_zipf_s_is_zero():
    pop = Population(venues=10, zipf_s=0.0)
    mix = Mix(show_code=0, scan=1, lookup=0, ingest=0)
    s = Workload(Constant(rps(20000), 1.0), mix=mix, population=pop, clients=ONE_GOOD).schedule()
    c = Counter(a.args.venue_id for a in s.arrivals())
    assert max(c.values()) / min(c.values()) < 1.2


def test_client_classes_share_arrivals_and_carry_behaviours():
    clients = (
        ClientClass("good", 0.7, Good()),
        ClientClass("impatient", 0.2, Impatient()),
        ClientClass("buggy", 0.1, Buggy()),
    )
    s = Workload(Constant(rps(10000), 1.0), clients=clients, seed=9).schedule()
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
    s = Workload(Constant(rps(100), 4.0), clients=clients, seed=1).schedule()
    arr = list(s.arrivals())
    ab = [a for a in arr if a.client_class == "abuser"]
    assert within(len(ab), 2000) and within(len(arr) - len(ab), 400)
    assert {a.client_id for a in ab} == {"abuser-1", "abuser-2", "abuser-3"}
    # fixed rate: same density in the first and second half although the profile is flat too
    assert within(sum(1 for a in ab if a.intended < 2.0), 1000)


def test_abuser_with_a_share_takes_part_of_the_profile():
    clients = (ClientClass("good", 0.5), ClientClass("abuser", 0.5, Abuser(identities=2)))
    s = Workload(Constant(rps(1000), 1.0), clients=clients).schedule()
    ab = [a for a in s.arrivals() if a.client_class == "abuser"]
    assert within(len(ab), 500) and {a.client_id for a in ab} == {"abuser-1", "abuser-2"}


def test_good_backoff_is_full_jitter_and_capped():
    import random

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
        (lambda: Mix(0, 0, 0, 0), "sum to 0"),
        (lambda: Population(people=0), "Population.people"),
        (lambda: ClientClass("a", 0.1, Abuser(rate=rps(5))), "share must be 0"),
        (lambda: Workload(Constant(rps(1), 1.0), clients=ONE_GOOD * 2), "unique"),
        (lambda: Workload(Constant(rps(1), 1.0)).schedule(compression=0), "compression"),
        (lambda: Reread(share=1.5), r"Reread.share"),
        (lambda: Reread(count=-1), r"Reread.count"),
        (lambda: Reread(delay=(2.0, 1.0)), r"Reread.delay"),
        (lambda: Reread(delay=(-0.1, 1.0)), r"Reread.delay"),
        (lambda: Workload(Constant(rps(1), 1.0), reread=2), r"Workload.reread"),  # type: ignore[arg-type]
    ],
)
def test_errors_say_what_was_wrong(make, match):
    with pytest.raises(WorkloadError, match=match):
        make()


# --------------------------------------------------------------------------- re-reads

# Many ingests with many positives, so every property is exercised many times.
INGESTY = Mix(show_code=0.6, scan=0.1, lookup=0.1, ingest=0.2)
POSITIVE = Population(batch_size=10, positive_rate=0.2)


def strip(a: Arrival) -> Arrival:
    return dataclasses.replace(a, index=-1)


def split(wl: Workload) -> tuple[list[Arrival], list[Arrival], list[Arrival]]:
    """(all arrivals, those of the same workload without re-reads, the re-reads)."""
    arr = list(wl.schedule().arrivals())
    base = list(dataclasses.replace(wl, reread=None).schedule().arrivals())
    known = {strip(a) for a in base}
    return arr, base, [a for a in arr if strip(a) not in known]


def positives(a: Arrival) -> set[int]:
    assert isinstance(a.args, Ingest)
    return {r.person_id for r in a.args.results if r.result == "positive"}


def test_rereads_follow_each_positive_from_their_own_phone_after_the_ingest():
    reread = Reread(share=1.0, count=2, delay=(0.2, 2.0))
    wl = Workload(Constant(rps(500), 6.0), INGESTY, ONE_GOOD, POSITIVE, seed=3, reread=reread)
    arr, base, extra = split(wl)
    # The other arrivals are untouched, in the same order; re-reads are only added.
    added = {a.index for a in extra}
    assert [strip(a) for a in arr if a.index not in added] == [strip(a) for a in base]
    assert len(arr) == len(base) + len(extra)
    ingests = [a for a in base if a.op == "ingest" and positives(a)]
    assert len(ingests) > 50
    for r in extra:
        assert r.op == "show_code" and isinstance(r.args, ShowCode)
        assert r.client_id == f"p{r.args.person_id}"
        assert r.client_class == "good" and r.behaviour == Good()
        assert any(
            r.args.person_id in positives(i) and 0.2 <= r.intended - i.intended <= 2.0
            for i in ingests
        ), r
    # every positive of an ingest early enough (re-reads past the end are dropped) gets
    # `count` re-reads in its window; more only if another ingest of theirs overlaps it
    by_person: dict[int, list[float]] = {}
    for r in extra:
        by_person.setdefault(r.args.person_id, []).append(r.intended)
    for i in ingests:
        if i.intended + 2.0 >= 6.0:
            continue
        for person in positives(i):
            windows = sum(
                1 for j in ingests if person in positives(j) and abs(j.intended - i.intended) <= 1.8
            )
            near = [t for t in by_person[person] if 0.2 <= t - i.intended <= 2.0]
            assert 2 <= len(near) <= 2 * windows, (person, i.intended, near)
    assert len(extra) >= 2 * sum(len(positives(i)) for i in ingests if i.intended < 4.0)


def test_rereads_are_deterministic_time_ordered_and_within_the_schedule():
    def run(seed: int) -> list[Arrival]:
        wl = Workload(Constant(rps(400), 4.0), INGESTY, population=POSITIVE, seed=seed)
        return list(wl.schedule(compression=2.0).arrivals())

    a, b, c = run(5), run(5), run(6)
    assert a == b
    assert a != c
    times = [e.intended for e in a]
    assert times == sorted(times)
    assert [e.index for e in a] == list(range(len(a)))
    assert times[-1] < 2.0  # re-reads past the (compressed) end are dropped
    # delays are real seconds: compression does not shrink them
    wl = Workload(Constant(rps(400), 4.0), INGESTY, population=POSITIVE, seed=5)
    _, _, extra = split(wl)
    assert extra and max(e.intended for e in extra) > 2.5


def test_rereads_honour_share_count_and_can_be_turned_off():
    def count(reread: Reread | None) -> tuple[int, int]:
        wl = Workload(Constant(rps(500), 6.0), INGESTY, population=POSITIVE, seed=8, reread=reread)
        _, base, extra = split(wl)
        n_pos = sum(len(positives(a)) for a in base if a.op == "ingest" and a.intended < 4.0)
        return len(extra), n_pos

    off, _ = count(None)
    assert off == 0
    assert count(Reread(share=0.0))[0] == 0 and count(Reread(count=0))[0] == 0
    three, n_pos = count(Reread(count=3, delay=(0.5, 0.5)))
    assert three >= 3 * n_pos
    half, _ = count(Reread(share=0.5, count=1, delay=(0.1, 0.1)))
    one, _ = count(Reread(share=1.0, count=1, delay=(0.1, 0.1)))
    assert abs(half - one / 2) <= 5 * math.sqrt(one / 4), (half, one)
    # off is exactly the workload without the feature
    wl = Workload(Constant(rps(300), 2.0), INGESTY, population=POSITIVE, seed=1)
    plain = list(dataclasses.replace(wl, reread=None).schedule().arrivals())
    assert plain == list(dataclasses.replace(wl, reread=Reread(count=0)).schedule().arrivals())


def test_rereads_come_from_people_classes_not_abusers():
    clients = (
        ClientClass("good", 0.6, Good()),
        ClientClass("impatient", 0.3, Impatient()),
        ClientClass("abuser", 0.1, Abuser(identities=2)),
        ClientClass("flood", 0.0, Abuser(identities=1, rate=rps(100))),
    )
    wl = Workload(Constant(rps(500), 6.0), INGESTY, clients, POSITIVE, seed=2)
    _, _, extra = split(wl)
    by_class = Counter(r.client_class for r in extra)
    assert set(by_class) == {"good", "impatient"}
    assert by_class["good"] > by_class["impatient"] > 0
    assert all(r.client_id == f"p{r.args.person_id}" for r in extra)
    assert all(
        r.behaviour == next(c.behaviour for c in clients if c.name == r.client_class) for r in extra
    )


def test_defaults_give_rereads_in_a_short_run():
    # 15 s at 200 requests/s, normal-day mix (2% ingest), batches of 20, 2% positive.
    for seed in range(3):
        _, _, extra = split(Workload(Constant(rps(200), 15.0), seed=seed))
        assert 20 <= len(extra) <= 100, (seed, len(extra))
        assert all(a.op == "show_code" and a.client_id.startswith("p") for a in extra)


# A fake system for the no_false_green invariant: ingests are acknowledged after
# INGEST_S, reads take READ_S; an honest system shows red from the acknowledgement on.
INGEST_S, READ_S = 0.15, 0.01


def fake_history(arrivals: list[Arrival], honest: bool = True) -> list[Op]:
    red_from: dict[int, float] = {}
    ops = []
    for a in arrivals:
        if a.op == "ingest":
            done = a.intended + INGEST_S
            for p in positives(a):
                red_from[p] = min(red_from.get(p, math.inf), done)
            value = None
        else:
            done = a.intended + READ_S
            red = honest and red_from.get(getattr(a.args, "person_id", 0), math.inf) <= a.intended
            value = {"colour": "red" if red else "green"} if a.op == "show_code" else None
        ops.append(
            Op(
                id=a.index,
                client_id=a.client_id,
                client_class=a.client_class,
                op=a.op,
                args=a.args,
                intended=a.intended,
                sent=a.intended,
                completed=done,
                outcome="ok",
                status=200,
                arrival=a.index,
                value=value,
            )
        )
    return ops


def test_no_false_green_gets_a_verdict_with_rereads_and_none_without():
    wl = Workload(Constant(rps(200), 15.0), seed=4)  # defaults: re-reads on
    with_rereads = list(wl.schedule().arrivals())
    without = list(dataclasses.replace(wl, reread=None).schedule().arrivals())

    # Without re-reads, reds exist but almost nobody looks (a chance read of 1 in 100k).
    bare = no_false_green.check(fake_history(without), FinalState(), no_false_green.Spec())
    assert bare.figures["acknowledged_reds"] > 10 and bare.figures["reads_checked"] <= 2
    spec = no_false_green.Spec(min_reads=5)
    assert no_false_green.check(fake_history(without), FinalState(), spec).valid is None

    holds = no_false_green.check(fake_history(with_rereads), FinalState(), spec)
    assert holds.valid is True, str(holds)
    assert holds.figures["reads_checked"] >= 20

    broken = no_false_green.check(fake_history(with_rereads, honest=False), FinalState(), spec)
    assert broken.valid is False and broken.figures["false_greens"] >= 20
