"""Extension routing plans (R-LOG-5) and inbound.yaml validation with file:line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dialerd.cli import cli
from dialerd.config.inbound import FallbackKind, InboundConfig, load_inbound
from dialerd.config.loader import ConfigError
from dialerd.inbound.routing import Plan, Step, plan_route

BASE = {
    "employees": {
        "alice": {"extension": "2001", "endpoint": "PJSIP/2001"},
        "bob": {"extension": "2002", "endpoint": "PJSIP/2002"},
        "carol": {"extension": "2003", "endpoint": "PJSIP/2003"},
        "dave": {"extension": "2004", "endpoint": "PJSIP/2004"},
    },
    "groups": {"backup": ["2003", "2004"]},
}


def config(**routes: dict[str, object]) -> InboundConfig:
    return InboundConfig.model_validate({**BASE, "routes": routes})


def step(*extensions: str, timeout: int = 20) -> Step:
    return Step("&".join(f"PJSIP/{x}" for x in extensions), timeout, extensions)


MEMBERS = ["2001", "2002", "2003"]


@pytest.mark.parametrize(
    ("scenario", "linked", "plan"),
    [
        ({"strategy": "ring_one", "members": MEMBERS}, None,
         Plan((step("2001"),), FallbackKind.HANGUP)),
        ({"strategy": "hunt", "members": MEMBERS, "step_timeout": 7}, None,
         Plan((step("2001", timeout=7), step("2002", timeout=7), step("2003", timeout=7)),
              FallbackKind.HANGUP)),
        ({"strategy": "ring_all", "members": MEMBERS}, None,
         Plan((step("2001", "2002", "2003"),), FallbackKind.HANGUP)),
        # the client's own employee rings alone first and is not rung again
        ({"strategy": "hunt", "members": MEMBERS}, "bob",
         Plan((step("2002"), step("2001"), step("2003")), FallbackKind.HANGUP)),
        ({"strategy": "ring_all", "members": MEMBERS}, "dave",
         Plan((step("2004"), step("2001", "2002", "2003")), FallbackKind.HANGUP)),
        ({"strategy": "hunt", "members": MEMBERS, "linked_agent_first": False}, "dave",
         Plan((step("2001"), step("2002"), step("2003")), FallbackKind.HANGUP)),
        # an agent who is not an employee (left the company) changes nothing
        ({"strategy": "ring_one", "members": MEMBERS}, "mallory",
         Plan((step("2001"),), FallbackKind.HANGUP)),
        ({"strategy": "ring_one", "members": ["2001"],
          "fallback": {"kind": "group", "target": "backup"}}, None,
         Plan((step("2001"), step("2003", "2004")), FallbackKind.HANGUP)),
        ({"strategy": "ring_one", "members": ["2001"],
          "fallback": {"kind": "voicemail", "target": "2001@dialerd"}}, None,
         Plan((step("2001"),), FallbackKind.VOICEMAIL, "2001@dialerd")),
        ({"strategy": "hunt", "members": ["2001"],
          "fallback": {"kind": "queue", "target": "support"}}, "alice",
         Plan((step("2001"),), FallbackKind.QUEUE, "support")),
    ],
    ids=["ring-one", "hunt", "ring-all", "hunt-linked", "ring-all-linked", "linked-off",
         "linked-unknown", "group-fallback", "voicemail", "queue-linked-only"],
)  # fmt: skip
def test_plans(scenario: dict[str, object], linked: str | None, plan: Plan) -> None:
    c = config(**{"+31850000001": scenario})
    assert plan_route(c, c.scenario_for("+31850000001"), linked) == plan


def test_dialed_number_matches_in_any_notation_and_default_route() -> None:
    c = InboundConfig.model_validate({
        **BASE,
        "routes": {"085 000 0001": {"strategy": "ring_one", "members": ["2001"]}},
        "default_route": {"strategy": "ring_all", "members": ["2003", "2004"]},
    })  # fmt: skip
    assert plan_route(c, c.scenario_for("+31850000001")).steps == (step("2001"),)
    assert plan_route(c, c.scenario_for("0031850000001")).steps == (step("2001"),)
    assert plan_route(c, c.scenario_for("+31850000099")).steps == (step("2003", "2004"),)


def test_no_scenario_is_an_empty_plan() -> None:
    c = config()
    assert plan_route(c, c.scenario_for("+31850000001")) == Plan((), FallbackKind.HANGUP)
    assert Plan((), FallbackKind.HANGUP).step(0) is None


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    assert load_inbound(tmp_path) == InboundConfig()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("employees:\n  a: {extension: '2001', endpoint: PJSIP/2001}\n"
         "routes:\n  '+31850000001':\n    members: ['2001', '2009']\n",
         "inbound.yaml:5: routes.+31850000001.members[1]: extension '2009' belongs to no"
         " employee; expected one of: 2001"),
        ("employees:\n  a: {extension: '2001', endpoint: PJSIP/2001}\n"
         "  b: {extension: '2001', endpoint: PJSIP/2002}\n",
         "inbound.yaml:3: employees.b.extension: extension 2001 also belongs to a"),
        ("employees:\n  a: {extension: '2001', endpoint: 'PJSIP/2001,evil'}\n",
         "inbound.yaml:2: employees.a.endpoint: String should match pattern"),
        ("default_route:\n  members: []\n", "inbound.yaml:2: default_route.members:"),
        ("default_region: XX\n", "inbound.yaml:1: default_region: unknown region 'XX'"),
        ("too_long: {threshold_second: 5}\n",
         "inbound.yaml:1: too_long.threshold_second: unknown key (did you mean"
         " threshold_seconds?)"),
        ("employees:\n  a: {extension: '2001', endpoint: PJSIP/2001}\n"
         "routes:\n  '1':\n    members: ['2001']\n    fallback: {kind: group, target: x}\n",
         "inbound.yaml:6: routes.1.fallback.target: no group 'x'; expected one of: none"),
        ("employees:\n  a: {extension: '2001', endpoint: PJSIP/2001}\n"
         "routes:\n  '1':\n    members: ['2001']\n    fallback: {kind: voicemail}\n",
         "inbound.yaml:6: routes.1.fallback.target: fallback voicemail needs a target"),
    ],
    ids=["unknown-member", "duplicate-extension", "endpoint-injection", "no-members",
         "region", "typo", "unknown-group", "no-target"],
)  # fmt: skip
def test_config_errors_name_file_line_and_key(
    tmp_path: Path, yaml_text: str, expected: str
) -> None:
    (tmp_path / "inbound.yaml").write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_inbound(tmp_path)
    assert str(exc.value.issues[0]).startswith(f"{tmp_path.name}/{expected}"), str(exc.value)


def test_inbound_cli_check_and_plan(tmp_path: Path) -> None:
    """``dialerd inbound plan`` explains a route with the handlers' own code."""
    (tmp_path / "inbound.yaml").write_text(
        "employees:\n  alice: {extension: '2001', endpoint: PJSIP/2001}\n"
        "  bob: {extension: '2002', endpoint: PJSIP/2002}\n"
        "routes:\n  '085 000 0001': {strategy: hunt, members: ['2001', '2002'], step_timeout: 9,"
        " fallback: {kind: queue, target: support}}\n"
    )
    runner = CliRunner()
    checked = runner.invoke(cli, ["inbound", "check", "--config", str(tmp_path)])
    assert checked.exit_code == 0 and "OK (2 employee(s), 1 routed number(s))" in checked.output
    plan = runner.invoke(
        cli, ["inbound", "plan", "+31850000001", "--linked-agent", "bob", "--config", str(tmp_path)]
    )
    assert plan.output.splitlines() == [
        "1. ring 2002 (PJSIP/2002) for 9 s",
        "2. ring 2001 (PJSIP/2001) for 9 s",
        "then: queue support",
    ]
    (tmp_path / "inbound.yaml").write_text("employees: {a: {extension: '1'}}\n")
    bad = runner.invoke(cli, ["inbound", "check", "--config", str(tmp_path)])
    assert bad.exit_code == 2 and "inbound.yaml:1: employees.a.endpoint" in bad.output
