"""Parsing, validation, security limits and diffs of policy specs."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from models.policy import PolicySpecError, Roster, diff_policies, parse_policy, validate_policy
from pipelines.policies import SHIPPED_DIR, parse_text, read_file

ROSTER = Roster.from_frames(
    pl.DataFrame(
        {
            "rep_id": ["R1", "R2", "R3"],
            "team": ["sales", "sales", "empty"],
            "seniority": ["junior", "senior", "mid"],
            "active": [True, True, False],
        }
    ),
)
FIELDS = {"lead_id", "created_at", "country", "employees", "industry"}


def policy(*rules: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": "p", "rules": list(rules), "fallback": {"team": "queue"}, **more}


def rule(name: str, when: dict[str, Any] | None, team: str = "sales", **then: Any) -> dict[str, Any]:
    return {"name": name, "when": when, "then": {"team": team, **then}}


def problems(raw: Any) -> list[str]:
    with pytest.raises(PolicySpecError) as caught:
        parse_policy(raw)
    return caught.value.problems


def test_shipped_policies_parse_and_validate_against_the_demo_teams() -> None:
    roster = Roster.from_frames(
        pl.DataFrame(
            {
                "rep_id": ["A", "B", "C"],
                "team": ["enterprise", "mid-market", "smb"],
                "seniority": ["senior", "mid", "junior"],
            }
        )
    )
    for path in sorted(SHIPPED_DIR.glob("*.yaml")):
        report = validate_policy(read_file(path).spec, roster)
        assert report.ok, (path.name, report.errors)
    seed = read_file(SHIPPED_DIR / "seed.yaml").spec
    assert [r.name for r in seed.rules] == ["hot", "warm", "cold"]
    assert seed.rules[0].then.notify and seed.rules[2].then.seniority == ("junior",)
    assert validate_policy(seed).warnings == ()  # score tiers cover [0, 100] without overlap


def test_malformed_specs_name_the_rule_and_the_problem() -> None:
    assert problems(policy(rule("a", {"field": "score", "op": "~=", "value": 3}))) == [
        "rule 'a': unknown operator '~=' (use one of: =, !=, <, <=, >, >=, between, in, not in, contains, is missing)"
    ]
    assert "rule 'a': unknown assignment method 'magic'" in problems(policy(rule("a", None, method="magic")))[0]
    assert problems({"name": "p", "rules": []}) == [
        "fallback: is mandatory: say where a lead goes when no rule matches (e.g. {team: queue})"
    ]
    assert "unknown key 'colour'" in problems(policy(rule("a", None, colour="red")))[0]
    assert (
        "'between' needs [low, high]"
        in problems(policy(rule("a", {"field": "score", "op": "between", "value": [9, 1]})))[0]
    )
    assert "'>' needs a number" in problems(policy(rule("a", {"field": "score", "op": ">", "value": "x"})))[0]
    assert problems({"name": "p", "rules": [], "fallback": {"method": "best_fit"}}) == [
        "fallback: its last step must name a team (e.g. {team: queue})"
    ]
    assert "more than one rule" in problems(policy(rule("a", None), rule("a", None)))[0]


@pytest.mark.parametrize(
    "value",
    [
        "x'; DROP TABLE leads; --",
        "1 OR 1=1",
        "__import__('os').system('id')",
        "${jndi:ldap://x}",
        "{{7*7}}",
        "a UNION SELECT * FROM reps",
        "eval(input())",
    ],
)
def test_values_that_look_like_sql_or_code_are_refused(value: str) -> None:
    found = problems(policy(rule("a", {"field": "country", "op": "=", "value": value})))
    assert found[0].startswith("rule 'a': value") and "looks like code or SQL" in found[0]


def test_field_team_and_policy_names_cannot_smuggle_code() -> None:
    assert "not a valid name" in problems(policy(rule("a", {"field": "score; drop", "op": "=", "value": 1})))[0]
    assert "not a valid name" in problems(policy(rule("a", None, team="x'); --")))[0]
    assert "not a valid name" in problems({**policy(), "name": "../../etc/passwd"})[0]


def test_huge_specs_are_refused_before_any_work() -> None:
    many = [rule(f"r{i}", {"field": "score", "op": ">", "value": i}) for i in range(201)]
    assert problems(policy(*many)) == ["rules: 201 rules; at most 200 are allowed"]
    deep: dict[str, Any] = {"field": "score", "op": ">", "value": 1}
    for _ in range(12):
        deep = {"not": deep}
    assert "nest deeper than 8" in problems(policy(rule("a", deep)))[0]
    huge_list = {"field": "country", "op": "in", "value": ["US"] * 1001}
    assert "at most 1000 values" in problems(policy(rule("a", huge_list)))[0]
    with pytest.raises(PolicySpecError, match="larger than 256 kB"):
        parse_text("name: p\n" + "# padding\n" * 30_000, "big.yaml")


def test_yaml_tags_are_not_executed() -> None:
    with pytest.raises(PolicySpecError, match="not valid YAML"):
        parse_text(
            "name: !!python/object/apply:os.system ['echo hi']\nrules: []\nfallback: {team: queue}\n", "evil.yaml"
        )


def test_validation_errors_and_warnings_against_the_workspace() -> None:
    spec = parse_policy(
        policy(
            rule("hot", {"field": "score", "op": ">", "value": 80}),
            rule("warm", {"field": "score", "op": "between", "value": [40, 70]}),
            rule("inside", {"field": "score", "op": ">=", "value": 85}),
            rule("typo", {"field": "countyr", "op": "=", "value": "US"}),
            rule("ghost-team", {"field": "country", "op": "=", "value": "FR"}, team="ghosts"),
            rule("nobody", {"field": "employees", "op": ">", "value": 5}, team="empty"),
            rule("unknown-rep", {"field": "employees", "op": "<", "value": 5}, reps=["R9"]),
            rule(
                "never",
                {"all": [{"field": "employees", "op": ">", "value": 5}, {"field": "employees", "op": "<", "value": 2}]},
            ),
        )
    )
    report = validate_policy(spec, ROSTER, FIELDS)
    assert set(report.errors) == {
        "rule 'typo': unknown field 'countyr'",
        "rule 'ghost-team': unknown team 'ghosts'",
        "rule 'nobody': team 'empty' has no active rep to take leads",
        "rule 'unknown-rep': unknown rep 'R9'",
        "rule 'unknown-rep': team 'sales' has no active rep to take leads",
        "rule 'inside': can never fire: rules above already take every score in [85, inf)",
        "rule 'never': can never fire: 'employees is above 5 and employees is below 2' selects no value",
    }
    assert any(
        w.startswith("score ranges leave gaps in [0, 100] (covered: [40, 70], (80, inf)") for w in report.warnings
    )
    catch_all = parse_policy(policy(rule("all", None), rule("after", {"field": "score", "op": "<", "value": 3})))
    assert validate_policy(catch_all).errors == (
        "rule 'after': can never fire: rule 'all' above matches every lead it would",
    )
    overlap = parse_policy(
        policy(
            rule("a", {"field": "score", "op": ">=", "value": 50}),
            rule("b", {"field": "score", "op": "<=", "value": 60}),
        )
    )
    assert "rules 'a' and 'b': score ranges overlap on [50, 60] ('a' wins there)" in validate_policy(overlap).warnings


def test_diff_reads_like_an_analyst_wrote_it() -> None:
    old = read_file(SHIPPED_DIR / "seed.yaml")
    raw = {**old.raw, "rules": [dict(r) for r in old.raw["rules"]]}
    raw["rules"][0] = {**raw["rules"][0], "when": {"field": "score", "op": ">", "value": 85}}
    raw["rules"][2] = {**raw["rules"][2], "then": {"team": "smb", "method": "least_loaded"}}
    raw["exploration"] = {"share": 0.1}
    changes = diff_policies(old.spec, parse_policy(raw))
    assert changes == [
        "rule 'hot' now applies when score is above 85 (was: score is above 80)",
        "rule 'cold' now sends leads to team smb by least loaded (was: team smb (junior reps), notify the owner;"
        " if nobody is eligible: team queue)",
        "exploration is now 10% of traffic (floor 0) (was: none)",
    ]
    assert diff_policies(old.spec, old.spec) == []
