"""An evaluation result as flat tables: every estimate kept, invalid ones with their reason."""

from __future__ import annotations

from typing import Any

from models.ope.tables import diagnostics_table, differences_table, estimates_table, segments_table

RESULT: dict[str, Any] = {
    "policies": [
        {
            "policy": "seed@1",
            "estimates": {
                "dm": {"valid": True, "value": 0.10, "ci_low": 0.09, "ci_high": 0.11, "std_error": 0.005},
                "ips": {"valid": False, "value": None, "ci_low": None, "ci_high": None, "reason": "no propensities"},
            },
            "diff_vs_first": {},
            "diagnostics": {"n_leads": 100, "effective_sample_size": None, "share_matched": 0.2},
            "truth": {"no_interference": 0.1, "deployed": 0.11},
        },
        {
            "policy": "best_fit@1",
            "estimates": {"dm": {"valid": True, "value": 0.12, "ci_low": 0.1, "ci_high": 0.14, "std_error": 0.01}},
            "diff_vs_first": {
                "dm": {
                    "valid": True,
                    "value": 0.02,
                    "ci_low": 0.0,
                    "ci_high": 0.04,
                    "std_error": 0.01,
                    "warnings": ["a", "b"],
                }
            },
            "diagnostics": {"n_leads": 100},
        },
    ],
    "segments": [
        {
            "segment": "team",
            "value": "sales",
            "n_leads": 60,
            "estimates": {"seed@1": {"valid": True, "value": 0.1}, "best_fit@1": {"valid": True, "value": 0.2}},
            "diff_vs_first": {"best_fit@1": {"valid": True, "value": 0.1}},
        },
        {"segment": "region", "value": None, "n_leads": 5, "estimates": {}, "diff_vs_first": {}},
    ],
}


def test_estimates_keep_invalid_rows_with_reason() -> None:
    table = estimates_table(RESULT)
    assert table.height == 3
    ips = table.filter(table["estimator"] == "ips").row(0, named=True)
    assert ips["valid"] is False and ips["value"] is None and ips["reason"] == "no propensities"


def test_differences_name_the_baseline() -> None:
    table = differences_table(RESULT)
    assert table.rows(named=True) == [
        {
            "policy": "best_fit@1",
            "baseline": "seed@1",
            "estimator": "dm",
            "valid": True,
            "value": 0.02,
            "ci_low": 0.0,
            "ci_high": 0.04,
            "std_error": 0.01,
            "reason": None,
            "warnings": "a; b",
        }
    ]


def test_diagnostics_and_truth_per_policy() -> None:
    table = diagnostics_table(RESULT)
    assert table["policy"].to_list() == ["seed@1", "best_fit@1"]
    assert table["truth_deployed"].to_list() == [0.11, None]
    assert table["effective_sample_size"].to_list() == [None, None]
    assert table["share_matched"].to_list() == [0.2, None]


def test_segments_have_values_and_differences() -> None:
    table = segments_table(RESULT)
    assert table.height == 3
    assert sorted(table["kind"].to_list()) == ["diff", "value", "value"]
    assert set(table["level"].to_list()) == {"sales"}


def test_empty_result_gives_empty_typed_tables() -> None:
    empty: dict[str, Any] = {"policies": [], "segments": []}
    for table in (estimates_table(empty), differences_table(empty), diagnostics_table(empty), segments_table(empty)):
        assert table.height == 0
