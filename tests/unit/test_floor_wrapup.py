"""Wrap-up timeout (issue 7 item 2): the campaign setting, its file:line:key errors, and
the pure rule of when a wrap-up has expired. The daemon's use of it is in
tests/test_daemon_commands.py (real store) and tests/pbx/test_wrapup.py (real floor)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dialerd.config import ConfigError, load_config
from dialerd.floor.agents import Agent, AgentState

pytestmark = pytest.mark.unit

DAEMON = "ami:\n  user: dialerd\n  secret: s3cret\n"
CAMPAIGN = """\
name: c1
mode: progressive
dial_string: PJSIP/{number}@carrier
default_region: NL
calling_hours:
  mon: ["09:00-17:00"]
max_attempts: 3
retry:
  busy: {result_code: busy, delay_minutes: 10}
  no_answer: {result_code: busy, delay_minutes: 60}
  machine: {result_code: busy, delay_minutes: 60}
  abandoned: {result_code: busy, delay_minutes: 5}
  failed: {result_code: busy, delay_minutes: 60}
result_codes:
  busy: {label: Busy, category: no-contact, contact_priority: very_low}
  silent: {label: No disposition, category: no-contact, contact_priority: very_low}
  mailed:
    label: Brochure sent
    category: no-contact
    contact_priority: medium
    flags: {require_email: true}
  order: {label: Order, category: positive, contact_priority: very_high}
registration:
  categories:
    - {name: Reason, topics: [Sale, Complaint]}
"""


def load(tmp_path: Path, extra: str):  # type: ignore[no-untyped-def]
    root = tmp_path / "conf"
    (root / "campaigns").mkdir(parents=True)
    (root / "dialerd.yaml").write_text(DAEMON)
    (root / "campaigns" / "c1.yaml").write_text(CAMPAIGN + textwrap.dedent(extra))
    return load_config(root).campaigns["c1"]


def only_issue(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    found = [str(i) for i in caught.value.issues]
    assert len(found) == 1, found
    return found[0]


def test_no_wrapup_section_means_no_timeout(tmp_path: Path) -> None:
    assert load(tmp_path, "").wrapup is None


def test_timeout_defaults_to_two_minutes(tmp_path: Path) -> None:
    wrapup = load(tmp_path, "wrapup: {result_code: silent}\n").wrapup
    assert (wrapup.seconds, wrapup.result_code) == (120, "silent")


@pytest.mark.parametrize("off", ["0", "null"])
def test_zero_or_null_turns_the_timeout_off_and_needs_no_code(tmp_path: Path, off: str) -> None:
    assert load(tmp_path, f"wrapup: {{timeout_seconds: {off}}}\n").wrapup.seconds == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "wrapup: {timeout_seconds: 30}\n",
            "conf/campaigns/c1.yaml:26: wrapup: result_code is required with timeout_seconds; "
            "expected the no-contact code to record when wrap-up times out (or "
            "timeout_seconds: 0)",
        ),
        (
            "wrapup:\n  timeout_seconds: 30\n  result_code: silnet\n",
            "conf/campaigns/c1.yaml:28: wrapup.result_code: 'silnet' is not defined under "
            "result_codes; expected one of: busy, mailed, order, silent",
        ),
        (
            "wrapup:\n  result_code: order\n",
            "conf/campaigns/c1.yaml:27: wrapup.result_code: 'order' has category 'positive'; "
            "expected a 'no-contact' code (nobody chose it, so it may not close the address "
            "or promise a callback)",
        ),
        (
            "wrapup:\n  result_code: mailed\n",
            "conf/campaigns/c1.yaml:27: wrapup.result_code: 'mailed' requires an e-mail "
            "(flags.require_email) that no agent picks when wrap-up times out; expected a "
            "code without it",
        ),
        (
            "wrapup:\n  timeout_seconds: -1\n  result_code: silent\n",
            "conf/campaigns/c1.yaml:27: wrapup.timeout_seconds: Input should be greater than "
            "or equal to 0 (got -1)",
        ),
        (
            "wrapup:\n  timout_seconds: 30\n",
            "conf/campaigns/c1.yaml:27: wrapup.timout_seconds: unknown key (did you mean "
            "timeout_seconds?); expected one of: timeout_seconds, result_code",
        ),
    ],
)
def test_wrapup_mistakes_name_file_line_and_key(tmp_path: Path, extra: str, message: str) -> None:
    assert only_issue(tmp_path, extra) == message


def test_forced_registration_rules_out_a_timeout(tmp_path: Path) -> None:
    """R-REG-2: no call closes without a registration, so nothing may close it by timer."""
    forced = CAMPAIGN.replace("registration:\n", "registration:\n  forced: true\n")
    root = tmp_path / "conf"
    (root / "campaigns").mkdir(parents=True)
    (root / "dialerd.yaml").write_text(DAEMON)
    (root / "campaigns" / "c1.yaml").write_text(
        forced + "wrapup:\n  timeout_seconds: 60\n  result_code: silent\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    assert [str(i) for i in caught.value.issues] == [
        "conf/campaigns/c1.yaml:28: wrapup.timeout_seconds: a timeout would close calls "
        "without the registration that registration.forced demands (R-REG-2); expected 0 "
        "(wrap-up waits for the agent's disposition) or registration.forced: false"
    ]
    (root / "campaigns" / "c1.yaml").write_text(
        forced + "wrapup:\n  timeout_seconds: 0\n  result_code: silent\n"
    )
    assert load_config(root).campaigns["c1"].wrapup.seconds == 0


def in_wrapup(since: float) -> Agent:
    return (
        Agent("1001", "PJSIP/1001")
        .login(0, ("c1",))
        .leg_up(0)
        .reserve(1, "a")
        .customer_joined(1)
        .customer_left(since)
    )


def test_wrap_expired_exactly_at_the_timeout_and_never_when_off() -> None:
    a = in_wrapup(10)
    assert not a.wrap_expired(11.9, 2)
    assert a.wrap_expired(12, 2)
    assert not a.wrap_expired(10_000, 0)
    assert not a.dispositioned(11).wrap_expired(10_000, 2), "only wrap-up expires"


def test_timeout_honours_a_pause_asked_for_during_the_call() -> None:
    a = in_wrapup(10).pause(11, "coffee").wrap_timeout(12, 2)
    assert (a.state, a.pause_reason, a.attempt_id) == (AgentState.PAUSED, "coffee", None)
