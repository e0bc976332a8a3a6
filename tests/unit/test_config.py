"""Configuration loading: every class of admin mistake gets file:line: key and what was
expected (issue 4). Each test writes a small config directory and checks the exact message."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialerd.cli import cli
from dialerd.config import Category, ConfigError, ContactPriority, Outcome, load_config

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DAEMON = """\
ami:
  user: dialerd
  secret: s3cret
"""
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
  later:
    label: Call back
    category: callback
    contact_priority: high
    callback_minutes: 180
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def issues(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(root)
    return [str(i) for i in caught.value.issues]


def only_issue(root: Path) -> str:
    found = issues(root)
    assert len(found) == 1, found
    return found[0]


def campaign(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "conf", {"dialerd.yaml": DAEMON, "campaigns/c1.yaml": text})


def test_example_configuration_is_valid_and_demo_covers_every_category() -> None:
    """conf/ (shipped) passes; the demo campaign has a code in every category (R-RC-1)."""
    config = load_config(REPO / "conf")
    demo = config.campaigns["demo"]
    assert demo.dial_string == "Local/{digits}@world"
    assert demo.mode.value == "predictive"
    assert demo.amd
    assert {c.category for c in demo.result_codes.values()} == set(Category)
    callbacks = [c for c in demo.result_codes.values() if c.category is Category.CALLBACK]
    assert [c.callback_minutes for c in callbacks] == [180]
    assert demo.format_dial_string("+31201234567", "0201234567") == "Local/31201234567@world"


def test_minimal_valid_config_loads(tmp_path: Path) -> None:
    config = load_config(campaign(tmp_path, CAMPAIGN))
    c1 = config.campaigns["c1"]
    assert c1.retry_rule(Outcome.BUSY).delay_minutes == 10
    assert c1.result_codes["later"].contact_priority.score == 4
    assert config.daemon.ami.secret.get_secret_value() == "s3cret"
    assert config.store_path == tmp_path / "conf" / "dialerd.db"


def test_contact_priority_scores_are_the_documented_ones() -> None:
    """R-RC-2: very low 1, open 2, medium 3, high 4, very high 6."""
    assert [p.score for p in ContactPriority] == [1, 2, 3, 4, 6]


# --- YAML-level mistakes --------------------------------------------------------------------


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("max_attempts: 3", "max_attempts: [3"))
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:8: YAML syntax error: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence)"
    )


def test_duplicate_key_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN + "max_attempts: 9\n")
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:21: max_attempts: key appears twice in this mapping; "
        "expected each key once"
    )


def test_empty_file(tmp_path: Path) -> None:
    root = campaign(tmp_path, "# nothing yet\n")
    assert only_issue(root) == "conf/campaigns/c1.yaml:1: file is empty; expected a mapping"


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    root = campaign(tmp_path, "- a\n- b\n")
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:1: expected a mapping of keys at the top level"
    )


def test_not_utf8(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN)
    (root / "campaigns/c1.yaml").write_bytes(b"name: c1\ndescription: caf\xe9\n")
    assert only_issue(root) == "conf/campaigns/c1.yaml:2: not UTF-8 text; expected a UTF-8 file"


def test_missing_dialerd_yaml(tmp_path: Path) -> None:
    assert issues(tmp_path) == [
        f"{tmp_path.name}/dialerd.yaml:1: file not found; expected dialerd.yaml"
    ]


# --- schema mistakes ------------------------------------------------------------------------


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("max_attempts: 3", "max_attempt: 3"))
    found = issues(root)
    assert (
        found[0]
        == "conf/campaigns/c1.yaml:1: max_attempts: required key is missing; expected an integer "
        "from 1 to 100"
    )
    assert found[1].startswith(
        "conf/campaigns/c1.yaml:7: max_attempt: unknown key (did you mean max_attempts?); "
        "expected one of: name, description, enabled, mode,"
    )


def test_unknown_key_in_a_nested_result_code(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("label: Call back", "lable: Call back"))
    found = issues(root)
    assert (
        "conf/campaigns/c1.yaml:16: result_codes.later.label: required key is missing; "
        "expected the text agents see" in found
    )
    assert (
        "conf/campaigns/c1.yaml:17: result_codes.later.lable: unknown key (did you mean label?); "
        "expected one of: code, label, category, contact_priority, callback_minutes, flags, "
        "funnel_phase, force_phase, retry_as"
    ) in found


def test_wrong_type(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("max_attempts: 3", "max_attempts: three"))
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:7: max_attempts: Input should be a valid integer, unable to "
        "parse string as an integer (got 'three')"
    )


def test_out_of_range(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("max_attempts: 3", "max_attempts: 0"))
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:7: max_attempts: Input should be greater than or equal to 1 (got 0)"
    )


def test_bad_enum_value_lists_the_choices(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("mode: progressive", "mode: predictiv"))
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:2: mode: Input should be 'preview', 'progressive', 'ratio' or "
        "'predictive' (got 'predictiv')"
    )


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ('"9-17"', "expected 'HH:MM-HH:MM' (24-hour clock), got '9-17'"),
        (
            '"17:00-09:00"',
            "window ends before it starts (17:00-09:00); expected start < end, use 24:00 for "
            "midnight",
        ),
    ],
)
def test_bad_calling_hours_window(tmp_path: Path, window: str, message: str) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace('"09:00-17:00"', window))
    assert only_issue(root) == f"conf/campaigns/c1.yaml:6: calling_hours.mon[0]: {message}"


def test_callback_code_needs_callback_minutes(tmp_path: Path) -> None:
    """R-RC-4: the callback category carries the delay."""
    root = campaign(tmp_path, CAMPAIGN.replace("    callback_minutes: 180\n", ""))
    assert only_issue(root) == (
        "conf/campaigns/c1.yaml:16: result_codes.later.callback_minutes: required for category "
        "'callback'; expected the minutes until the address is offered again, e.g. 180"
    )


def test_callback_minutes_only_on_callback_codes(tmp_path: Path) -> None:
    text = CAMPAIGN.replace(
        "contact_priority: very_low}", "contact_priority: very_low, callback_minutes: 5}"
    )
    assert only_issue(campaign(tmp_path, text)) == (
        "conf/campaigns/c1.yaml:15: result_codes.busy.callback_minutes: only allowed on category "
        "'callback', not 'no-contact'"
    )


def test_open_priority_is_not_a_result(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("contact_priority: very_low}", "contact_priority: open}")
    assert only_issue(campaign(tmp_path, text)) == (
        "conf/campaigns/c1.yaml:15: result_codes.busy.contact_priority: 'open' only describes an "
        "address never worked; expected very_low, medium, high or very_high"
    )


def test_retry_must_cover_every_outcome(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("  failed: {result_code: busy, delay_minutes: 60}\n", "")
    assert only_issue(campaign(tmp_path, text)) == (
        "conf/campaigns/c1.yaml:8: retry: needs a rule for every dialer outcome; missing: failed"
    )


def test_retry_result_code_must_exist(tmp_path: Path) -> None:
    text = CAMPAIGN.replace(
        "busy: {result_code: busy, delay_minutes: 10}",
        "busy: {result_code: bsy, delay_minutes: 10}",
    )
    assert only_issue(campaign(tmp_path, text)) == (
        "conf/campaigns/c1.yaml:9: retry.busy.result_code: 'bsy' is not defined under "
        "result_codes; expected one of: busy, later"
    )


def test_retry_result_code_must_be_no_contact(tmp_path: Path) -> None:
    text = CAMPAIGN.replace("failed: {result_code: busy,", "failed: {result_code: later,")
    assert only_issue(campaign(tmp_path, text)) == (
        "conf/campaigns/c1.yaml:13: retry.failed.result_code: 'later' has category 'callback'; "
        "expected a 'no-contact' code"
    )


def test_unknown_retry_outcome(tmp_path: Path) -> None:
    text = CAMPAIGN.replace(
        "  busy: {result_code: busy, delay_minutes: 10}",
        "  bussy: {result_code: busy, delay_minutes: 10}",
    )
    assert only_issue(campaign(tmp_path, text)) == (
        "conf/campaigns/c1.yaml:9: retry.bussy: Input should be 'busy', 'no_answer', 'machine', "
        "'abandoned' or 'failed' (got 'bussy')"
    )


@pytest.mark.parametrize(
    ("dial", "message"),
    [
        (
            "PJSIP/{phone}@carrier",
            "unknown placeholder {phone}; expected one of {digits}, {national}, {number}",
        ),
        ("PJSIP/carrier", "expected a placeholder for the number, e.g. 'PJSIP/{number}@carrier'"),
        ("{number}", "expected TECH/resource, e.g. 'PJSIP/{number}@carrier'"),
    ],
)
def test_bad_dial_string(tmp_path: Path, dial: str, message: str) -> None:
    text = CAMPAIGN.replace("PJSIP/{number}@carrier", f"'{dial}'")
    assert (
        only_issue(campaign(tmp_path, text)) == f"conf/campaigns/c1.yaml:3: dial_string: {message}"
    )


def test_bad_region_and_zone(tmp_path: Path) -> None:
    text = CAMPAIGN.replace(
        "default_region: NL", "default_region: XX\ndefault_timezone: Europe/Amsterdan"
    )
    assert issues(campaign(tmp_path, text)) == [
        "conf/campaigns/c1.yaml:4: default_region: unknown region 'XX'; expected an ISO 3166 "
        "alpha-2 code such as NL, DE, US",
        "conf/campaigns/c1.yaml:5: default_timezone: unknown time zone 'Europe/Amsterdan'; "
        "expected an IANA name such as Europe/Amsterdam",
    ]


def test_registration_mistakes(tmp_path: Path) -> None:
    """R-REG-1/2: topics unique; forced registration needs categories."""
    doubled = CAMPAIGN + "registration:\n  categories:\n    - name: Reason\n      topics: [A, A]\n"
    assert only_issue(campaign(tmp_path, doubled)) == (
        "conf/campaigns/c1.yaml:24: registration.categories[0].topics[1]: topic 'A' is listed "
        "twice; expected unique topics"
    )
    forced = CAMPAIGN + "registration:\n  forced: true\n"
    assert only_issue(campaign(tmp_path / "b", forced)) == (
        "conf/campaigns/c1.yaml:22: registration.forced: forced registration needs at least one "
        "category under registration.categories"
    )


def test_daemon_errors_name_dialerd_yaml(tmp_path: Path) -> None:
    root = write(tmp_path / "conf", {"dialerd.yaml": "ami:\n  user: x\nmqtt:\n  port: 99999\n"})
    assert issues(root) == [
        "conf/dialerd.yaml:1: ami.secret: required key is missing; expected the AMI secret "
        "(see secret_file / ${ENV:NAME})",
        "conf/dialerd.yaml:4: mqtt.port: Input should be less than or equal to 65535 (got 99999)",
    ]


# --- secrets --------------------------------------------------------------------------------


def test_env_secret_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMI_PW", "from-env")
    daemon = "ami:\n  user: x\n  secret: ${ENV:AMI_PW}\nstore:\n  path: ${ENV:NO_SUCH_VAR:-x.db}\n"
    root = write(tmp_path / "conf", {"dialerd.yaml": daemon})
    config = load_config(root)
    assert config.daemon.ami.secret.get_secret_value() == "from-env"
    assert config.daemon.store.path == "x.db"


def test_missing_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMI_PW", raising=False)
    root = write(tmp_path / "conf", {"dialerd.yaml": "ami:\n  user: x\n  secret: ${ENV:AMI_PW}\n"})
    assert only_issue(root) == (
        "conf/dialerd.yaml:3: ami.secret: environment variable AMI_PW is not set; expected it to "
        "hold the value (or write ${ENV:AMI_PW:-default})"
    )


def test_secret_file(tmp_path: Path) -> None:
    root = write(
        tmp_path / "conf",
        {"dialerd.yaml": "ami:\n  user: x\n  secret_file: ami.secret\n", "ami.secret": "pw\n"},
    )
    assert load_config(root).daemon.ami.secret.get_secret_value() == "pw"


def test_secret_file_missing_and_both_given(tmp_path: Path) -> None:
    root = write(tmp_path / "conf", {"dialerd.yaml": "ami:\n  user: x\n  secret_file: nope\n"})
    message = only_issue(root)
    assert message.startswith("conf/dialerd.yaml:3: ami.secret: cannot read secret file ")
    assert message.endswith("nope: No such file or directory; expected a readable file")
    both = "ami:\n  user: x\n  secret: a\n  secret_file: b\n"
    root = write(tmp_path / "conf2", {"dialerd.yaml": both})
    assert only_issue(root) == (
        "conf2/dialerd.yaml:4: ami.secret_file: give either secret or secret_file, not both"
    )


# --- overrides ------------------------------------------------------------------------------


def test_later_campaign_file_overrides_and_is_blamed(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN)
    write(root, {"campaigns/d-local.yaml": "name: c1\nmax_attempts: 7\nmode: preview\n"})
    c1 = load_config(root).campaigns["c1"]
    assert (c1.max_attempts, c1.mode.value, c1.default_region) == (7, "preview", "NL")
    write(root, {"campaigns/e-bad.yaml": "name: c1\nring_timeout_seconds: 2\n"})
    assert only_issue(root) == (
        "conf/campaigns/e-bad.yaml:2: ring_timeout_seconds: Input should be greater than or "
        "equal to 5 (got 2)"
    )


def test_dialerd_d_overrides_daemon(tmp_path: Path) -> None:
    root = write(
        tmp_path / "conf",
        {"dialerd.yaml": DAEMON, "dialerd.d/10-site.yaml": "ami:\n  host: pbx.local\n"},
    )
    ami = load_config(root).daemon.ami
    assert (ami.host, ami.user) == ("pbx.local", "dialerd")


def test_all_files_are_checked_not_just_the_first_problem(tmp_path: Path) -> None:
    root = campaign(tmp_path, CAMPAIGN.replace("mode: progressive", "mode: x"))
    write(root, {"campaigns/c2.yaml": CAMPAIGN.replace("name: c1", "name: c2").replace("NL", "XX")})
    found = issues(root)
    assert [f.split(":")[0] for f in found] == ["conf/campaigns/c1.yaml", "conf/campaigns/c2.yaml"]


# --- the CLI --------------------------------------------------------------------------------


def test_check_config_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["check-config", "--config", str(REPO / "conf")])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    assert "demo" in ok.output
    bad = shutil.copytree(REPO / "conf", tmp_path / "conf")
    (bad / "campaigns" / "demo.yaml").write_text(
        (bad / "campaigns" / "demo.yaml").read_text().replace("max_attempts: 5", "max_attempts: -1")
    )
    result = runner.invoke(cli, ["check-config", "--config", str(bad)])
    assert result.exit_code == 2
    assert "conf/campaigns/demo.yaml:" in result.output
    assert "max_attempts: Input should be greater than or equal to 1 (got -1)" in result.output
