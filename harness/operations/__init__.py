"""Operations: what clients send to a system, declared as data once per system.

A topology names its operations (`operations: operations.yaml`, or the same mapping
inline); every experiment on that system draws from them. The reference system's four
operations are one such file (`reference_system/operations.yaml`)::

    values:                               # shared generators (harness.generators)
      person: {int: [1, "${param:people}"]}
    operations:
      show_code:
        path: /v1/code/${person}          # method GET by default: a read
        client: p${person}                # who sends it (retry budgets, gateway choice)
        headers: {X-Client-Id: "${client}"}
        capture: {token: {json: token, key: "${person}"}}   # kept for later operations
        keep: [colour]                    # response fields kept in the history
      scan:
        method: POST                      # a write: an unknown outcome is `info`
        path: /v1/scans
        key: ${scan_id}                   # what identifies the write (data invariants)
        values: {scan_id: {sequence: s}, venue: {zipf: [1, 2000]}}
        body: {scan_id: "${scan_id}", person_id: "${person}", token: "${token}", at: "${now}"}
        requires: {token: show_code}      # no token captured yet: show the code first
        timeout: 3s                       # caps the client behaviour's timeout
        outcomes: {ok: [2xx], info: [500, 502, 504]}   # these are the defaults for a write
    mixes:
      normal_day: {show_code: 0.8, scan: 0.2}
    mix: normal_day                       # the default mix (default: the first, else equal)

Templates (`harness.templates`) read the drawn values, fields of them
(`${item.person_id}`), values captured from earlier responses, and two special values:
`${client}` (the client id) and `${now}` (the wall-clock time of the first attempt, in
ISO 8601 UTC; a retry of the same write sends the same time). Outcomes: a status in `ok`
is ok, one in `info` is unknown (the write may have been applied), any other status is a
fail; a request that could not be sent is a fail; one sent but not answered (timeout,
reset) is `info` for a write and a fail for a read.

**Follow-ups** schedule more arrivals after an operation, from its drawn values (not
from its response, so the schedule stays pure): a lab's batch with a positive result
makes that person look at their own code soon after::

      ingest:
        followups:
          - {op: show_code, each: results, where: {result: positive},
             values: {person: "${item.person_id}"}, count: 2, delay: [200ms, 2s]}

`delay` is real time (not compressed); `share` (default 1) of the matching items follow.
"""

from harness.operations.model import (
    METHODS,
    SPECIAL,
    Capture,
    Followup,
    Mix,
    Operation,
    Operations,
    Outcome,
    Outcomes,
)
from harness.operations.parse import parse_mix, parse_operations

__all__ = [
    "METHODS",
    "SPECIAL",
    "Capture",
    "Followup",
    "Mix",
    "Operation",
    "Operations",
    "Outcome",
    "Outcomes",
    "parse_mix",
    "parse_operations",
]
