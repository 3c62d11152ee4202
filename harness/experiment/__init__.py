"""Experiments: one YAML file says what system to start, what load and faults to apply,
and what must hold; `load_experiment` validates it into frozen dataclasses.

Every mistake raises one `ConfigError` naming the file, the key path
(`faults[1].latency.ms`), the value received (shortened) and what was expected, before
anything starts. Unknown keys and keys given twice are errors. Traffic goes only to
loopback (`harness.loopback`).

Schema
------
```yaml
name: morning-surge                 # required: lowercase letters, digits, '-'
description: 10x surge at 07:40     # required: one line, shown by `harness list`
seed: 42                            # optional default seed (--seed wins)
capacity: 1200                      # optional: C in requests/s instead of calibrating

system:                             # optional; every key optional
  topology: reference               # 'reference' (default) or a file, relative to this one
  # profile: hardened               # run only this profile (default: every profile of the topology)
  backend: local                    # local | containers
  host: 127.0.0.1                   # loopback only
  app_workers: 2                    # any parameter of the topology (overrides the profile's) ...
  overrides: {cache: false}         # ... checked by the system's domain (harness.domain)
  # params: {app_workers: 2}        # ... or the same grouped under params
  capacity_from: naive              # whose C rates are relative to (default: the topology's)
  proxy: faults                     # faults: Toxiproxy only on links a fault may act on (the
                                    # rest run direct); all: every link proxied

workload:                           # required (harness.workload.spec)
  duration: 40s                     # experiment time; durations: 5s, 500ms, 2m, 1h or seconds
  compression: 10                   # optional (1): play the schedule 10x faster
  rate:                             # phases, each from its `at` to the next one's
    - {at: 0s, x: 0.2, phase: steady}                    # x: multiple of capacity C
    - {at: 5s, ramp_to: 2.0, over: 5s, phase: ramp}      # ramp from the previous rate, then hold
    - {at: 10s, x: 2.0, phase: surge}
    - {at: 25s, rps: 100, phase: recovery}               # rps: absolute requests/s
                                    # (x_own: N, N times the running profile's own capacity,
                                    # calibrated per profile; not with a fixed capacity:)
  mix: normal_day                   # a mix the system declares, or {show_code: 0.9, scan: 0.1}
  clients:                          # class name -> share, or a mapping with share and behaviour
    impatient: 0.94
    buggy: {share: 0.05, max_attempts: 50, timeout: 10s}
    abuser: {share: 0, rate: {rps: 50}, identities: 3}
    apps: {behaviour: good, share: 0.01, timeout: 3s, max_retries: 2, budget: false}
  values: {person: {int: [1, 1000]}}  # optional: replace some of the system's value generators

steady_state: {p99_ms: 500}         # optional: over the system's (harness.sut), or false
metrics: {every: 1s}                # optional: sample the topology's metrics this often
                                    # (experiment time; default: the topology's interval)

faults:                             # optional: `at`, optional `for`, exactly one fault kind
  - {at: 10s, for: 5s, latency: {link: app->postgres, ms: 500, jitter_ms: 100}}
  - {at: 18s, kill: {component: gateway-a, signal: SIGKILL}}   # no `for`: healed at the end
  - {at: 22s, db_loss: postgres}    # kinds: see harness.faults; targets must exist in
                                    # every profile the experiment runs (lose_unsynced: a
                                    # power loss of a component with a dir on LazyFS)

invariants:                         # required, non-empty; each one kind with its parameters
  - availability: {op: show_code, min: 0.99, client_class: good, during: steady}
  - latency: {op: show_code, p99_ms: 300, during: steady}  # unit: attempts (default) | intents
  - goodput: {min_fraction_of_capacity: 0.8, during: surge}
  - recovers: {within: 6s, after: trigger_end}
  - no_lost_scans: {}               # a preset of the system (harness.sut)
  - faults_took_effect: {}

search:                             # optional: a fault search (harness.search.space)
  kinds: [latency, down, kill, pause]
  targets: [app->postgres, app-1]
  max_faults: 2
  budget: 5m

expect:                             # optional, per profile; unlisted profiles must pass
  naive: {fail: [recovers, goodput]}  # these must fail and every other invariant hold
                                    # (may_fail: [ids] judged on neither side: a signal
                                    # that swings; others: any: the rest may do anything)
  hardened: pass                    # every invariant must hold; `skip` does not run it
```

Time: every duration in the file is experiment time and is divided by
`workload.compression` at run time (phases, fault times, `within`, `window`,
`max_below_for`), except client behaviour times (timeouts, patience, backoff, follow-up
delays) and latency bounds in `*_ms`, which are real. `during:` takes a phase name,
`all`, or `{from: 5s, to: 25s}`. An invariant's id is its kind, `kind#n` when the kind
repeats, or its `id:`. See `harness.invariants` for every invariant's parameters.

    exp = load_experiment("experiments/morning-surge.yaml")
    for profile in exp.profiles:
        sut = exp.sut(profile)
        schedule = exp.schedule(sut.operations, capacity=820.0, seed=7)
"""

from harness.experiment.load import load_experiment
from harness.experiment.spec import (
    BACKENDS,
    TRUST,
    Expectation,
    Experiment,
    Judgement,
    SystemSpec,
)

__all__ = [
    "BACKENDS",
    "TRUST",
    "Expectation",
    "Experiment",
    "Judgement",
    "SystemSpec",
    "load_experiment",
]
