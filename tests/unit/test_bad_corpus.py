"""The corpus of malformed files (tests/fixtures/bad): each is one clear error at load time
naming the file, the key path, the value (shortened) and what was expected; from the
command line it exits 2 and starts nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from harness.cli import MAX_SEED, main
from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.experiment.load import MAX_SEED as FILE_MAX_SEED
from harness.validate import MAX_FILE_BYTES

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "fixtures" / "bad"
TOPOLOGIES = BAD / "topology"

# file -> (the key path the error names, a fragment of what it says was expected)
CORPUS: dict[str, tuple[str, str]] = {
    # encodings
    "binary_junk.yaml": ("byte 128", "UTF-8 text"),
    "latin1_description.yaml": ("byte 33", "UTF-8 text"),
    "utf16_bom.yaml": ("byte 0", "UTF-8 text"),
    # YAML itself
    "yaml_syntax_error.yaml": ("line 5, column 1", "valid YAML"),
    "non_string_key.yaml": ("line 15, column 3", "valid YAML"),
    "not_a_mapping.yaml": ("", "a mapping"),
    "empty.yaml": ("name", "required key"),
    "unknown_top_key.yaml": ("wrokload", "one of"),
    # a key given twice: YAML would keep the last silently
    "duplicate_faults.yaml": ("faults", "each key once"),
    "duplicate_key_in_fault.yaml": ("faults[0].latency.ms", "each key once"),
    "duplicate_phase_key.yaml": ("workload.rate[0].at", "each key once"),
    # aliases
    "billion_laughs.yaml": ("a4", "every alias expanded"),
    "recursive_alias.yaml": ("extra", "one of"),
    # non-finite numbers
    "x_inf.yaml": ("workload.rate[0].x", "a finite number"),
    "rps_nan.yaml": ("workload.rate[1].rps", "a finite number"),
    "compression_nan.yaml": ("workload.compression", "a finite number"),
    "fault_at_nan.yaml": ("faults[0].at", "a finite number"),
    "fault_for_inf.yaml": ("faults[0].for", "a finite number"),
    "latency_ms_inf.yaml": ("faults[0].latency.ms", "a finite number"),
    # beyond what the fault's backend (Toxiproxy's int32 fields) accepts
    "latency_beyond_toxiproxy.yaml": ("faults[0].latency.ms", "a number in [0, 3.6e+06]"),
    "bandwidth_beyond_toxiproxy.yaml": ("faults[0].bandwidth.kb_per_s", "a number in [0, 2.1"),
    "slicer_beyond_toxiproxy.yaml": ("faults[0].slicer.delay_us", "a number in [0, 2.1"),
    "negative_latency.yaml": ("faults[0].latency.ms", "a number in [0"),
    # upper bounds on rates, durations and sizes
    "rate_rps_huge.yaml": ("workload.rate[1].rps", "a number"),
    "rate_x_huge.yaml": ("workload.rate[0].x", "a number in [0, 100]"),
    "compression_huge.yaml": ("workload.compression", "(0, 100]"),
    "duration_ten_years.yaml": ("workload.duration", "at most 1h"),
    "duration_seconds_huge.yaml": ("workload.duration", "at most 1h"),
    "fault_for_huge.yaml": ("faults[0].for", "at most 24h"),
    "timeout_huge.yaml": ("workload.clients.good.timeout", "at most 24h"),
    "fault_after_end.yaml": ("faults[0].at", "before the workload ends"),
    "fault_unknown_link.yaml": ("faults[0].latency.link", "a link"),
    "percent_out_of_range.yaml": ("invariants[0].availability.min", "a fraction in [0, 1]"),
    # seeds
    "seed_huge.yaml": ("seed", f"[0, {FILE_MAX_SEED:g}]"),
    "seed_negative.yaml": ("seed", f"[0, {FILE_MAX_SEED:g}]"),
    # the loopback guard
    "host_bare_ip.yaml": ("system.host", "a loopback target"),
    "url_in_description.yaml": ("description", "a loopback target"),
    "ip_port_anywhere.yaml": ("description", "a loopback target"),
    "overrides_bare_ip.yaml": ("system.overrides.upstream", "a loopback target"),
    # a referenced topology file: named with the referring key, its contents never echoed
    "topology_missing.yaml": ("system.topology", "a topology file"),
    "topology_binary.yaml": ("system.topology", "UTF-8 text"),
    "topology_broken.yaml": ("system.topology", "each key once"),
    "topology_etc_passwd.yaml": ("system.topology", "a topology file that loads"),
}

# topology file -> (the key path inside it, a fragment of what was expected)
TOPOLOGY_CORPUS: dict[str, tuple[str, str]] = {
    "binary.yaml": ("byte 0", "UTF-8 text"),
    "deep_alias.yaml": ("x4", "every alias expanded"),
    "duplicate_component.yaml": ("components.web", "each key once"),
    "duplicate_key.yaml": ("name", "each key once"),
    "env_url.yaml": ("components.web.env.MIRROR", "a loopback target"),
    "param_bare_ip.yaml": ("params.upstream", "a loopback target"),
    "param_inf.yaml": ("params.timeout", "a finite number"),
    "replicas_huge.yaml": ("components.web.replicas", "a number in [0,"),
}

MAX_MESSAGE = 1500  # a value is shortened to ~200 characters; the rest is file, key, expectation


def _load_error(path: Path) -> ConfigError:
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert time.monotonic() - started < 2.0, "refused at once"
    return info.value


def test_every_file_of_the_corpus_has_a_case() -> None:
    assert sorted(p.name for p in BAD.glob("*.yaml")) == sorted(CORPUS)
    assert sorted(p.name for p in TOPOLOGIES.glob("*.yaml")) == sorted(TOPOLOGY_CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_a_bad_experiment_is_one_clear_error(name: str) -> None:
    path = BAD / name
    key, expected = CORPUS[name]
    e = _load_error(path)
    message = str(e)
    assert e.source == str(path), message
    assert e.key == key, message
    assert expected in e.expected or expected in e.hint, message
    assert message.startswith(f"{path}: {key}: got " if key else f"{path}: got "), message
    assert "expected" in message and len(message) < MAX_MESSAGE, message


@pytest.mark.parametrize("name", sorted(TOPOLOGY_CORPUS))
def test_a_bad_topology_is_named_at_the_experiment_key_that_refers_to_it(
    tmp_path: Path, name: str
) -> None:
    topology = TOPOLOGIES / name
    text = (BAD / "topology_missing.yaml").read_text()
    exp = tmp_path / "exp.yaml"
    exp.write_text(text.replace("no-such-topology.yaml", str(topology)))
    key, expected = TOPOLOGY_CORPUS[name]
    e = _load_error(exp)
    assert e.source == str(exp) and e.key == "system.topology", str(e)
    # the topology's own mistake, located in the topology file
    assert f"{topology}: {key}: expected " in e.hint and expected in e.hint, str(e)
    assert len(str(e)) < MAX_MESSAGE, str(e)


def test_a_referenced_file_is_never_echoed() -> None:
    e = _load_error(BAD / "topology_etc_passwd.yaml")
    assert "/etc/passwd" in str(e)
    assert "root:" not in str(e) and "/bin/" not in str(e), str(e)


def test_a_huge_bad_value_is_shortened(tmp_path: Path) -> None:
    text = (BAD / "x_inf.yaml").read_text().replace(".inf", "0.3")
    huge = "y" * 900_000
    path = tmp_path / "huge.yaml"
    path.write_text(text.replace("description: one", f"description: {huge} one"))
    e = _load_error(path)
    assert e.key == "description" and "900,0" in str(e), str(e)[:MAX_MESSAGE]
    assert len(str(e)) < MAX_MESSAGE


HUGE_AT = [
    ("name",),
    ("workload", "duration"),
    ("workload", "rate", 0, "phase"),
    ("workload", "rate", 1, "rps"),
    ("faults", 0, "at"),
    ("faults", 0, "latency", "link"),
    ("faults", 0, "latency", "ms"),
    ("invariants", 0, "availability", "op"),
    ("invariants", 0, "availability", "min"),
    ("system",),
    ("seed",),
]


@pytest.mark.parametrize("at", HUGE_AT, ids=[".".join(map(str, a)) for a in HUGE_AT])
@pytest.mark.parametrize("fill", ["y" * 300_000, "7" * 300_000 + "s", "a-" * 150_000 + ">b"])
def test_a_huge_value_anywhere_is_refused_at_once_and_shortened(
    tmp_path: Path, at: tuple[str | int, ...], fill: str
) -> None:
    data = yaml.safe_load((BAD / "x_inf.yaml").read_text().replace(".inf", "0.3"))
    target = data
    for k in at[:-1]:
        target = target[k]
    target[at[-1]] = fill
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(data, width=10**9))
    e = _load_error(path)
    assert "characters)" in str(e) and len(str(e)) < MAX_MESSAGE, str(e)[:MAX_MESSAGE]


def test_a_huge_bad_line_is_shortened(tmp_path: Path) -> None:
    path = tmp_path / "line.yaml"
    path.write_text("name: x\n\tkey: " + "z" * 900_000 + "\n")
    e = _load_error(path)
    assert e.expected == "valid YAML" and len(str(e)) < MAX_MESSAGE, str(e)[:MAX_MESSAGE]


def test_a_50_mb_file_is_refused_by_its_size_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("w") as fh:
        fh.write("name: big\ndescription: |\n")
        line = "  " + "lorem ipsum " * 8 + "\n"
        fh.write(line * (50_000_000 // len(line)))
    e = _load_error(path)
    assert f"at most {MAX_FILE_BYTES:,} bytes" in str(e)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_command_line_exits_2_and_starts_nothing(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run was started for a file that does not load")

    monkeypatch.setattr("harness.run.run", started)
    monkeypatch.setattr("harness.backends.get_backend", started)
    path = BAD / name
    result = CliRunner().invoke(main, ["run", "--profile", "naive", str(path)])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {path}"), result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("seed", ["-1", str(MAX_SEED + 1), str(10**23)])
@pytest.mark.parametrize("command", ["run", "up", "search", "calibrate", "demo"])
def test_a_seed_option_is_bounded_as_the_file_seed_is(
    command: str, seed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("started with an out-of-range seed")

    monkeypatch.setattr("harness.run.run", started)
    monkeypatch.setattr("harness.backends.get_backend", started)
    args = {
        "run": ["run", "--seed", seed, str(ROOT / "experiments")],
        "up": ["up", "--seed", seed],
        "search": ["search", "--profile", "naive", "--seed", seed, "x.yaml"],
        "calibrate": ["calibrate", "--seed", seed],
        "demo": ["demo", "--seed", seed],
    }[command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "--seed" in result.output and f"0<=x<={MAX_SEED}" in result.output, result.output
    assert MAX_SEED == FILE_MAX_SEED


def test_a_fault_the_backend_refused_makes_the_run_inconclusive_never_a_pass() -> None:
    from harness.cli import EXIT_INCONCLUSIVE, _exit_code
    from harness.experiment import Expectation
    from harness.faults import Latency, ScheduledFault
    from harness.faults.evidence import Evidence
    from harness.faults.schedule import FaultTrace, ScheduleReport
    from harness.invariants import Verdict
    from harness.invariants.faults_took_effect import faults_verdict
    from harness.invariants.final_state import fault_records

    fault = Latency(link="app->postgres", latency=200)
    refused = Evidence(
        fault.describe(), "inject", 10.0, 10.1, error="toxiproxy answered 400: value out of range"
    )
    scheduled = ScheduledFault(at=6.0, fault=fault, duration=8.0, source="x.yaml: faults[0]")
    report = ScheduleReport(t0=4.0, records=(FaultTrace(scheduled, refused, None),))
    records = fault_records(report)
    assert [r.took_effect for r in records] == [False]
    verdict = faults_verdict(records)
    assert verdict.valid is False and "faults[0]" in verdict.message
    # every invariant of the file held: the run still did not test what it says it did
    judgement = Expectation("pass").judge([Verdict("availability", True), verdict])
    assert judgement.outcome == "inconclusive"
    assert _exit_code([judgement.outcome]) == EXIT_INCONCLUSIVE != 0
