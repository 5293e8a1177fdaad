"""The Rules, Compare, Model and Monitor pages through AppTest: widgets interact, nothing raises,
and every number shown equals the library call behind the page for the same inputs."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from streamlit.testing.v1 import AppTest

from leadroute.serving.metrics import Metrics
from models.ope import differences_table
from models.policy import PolicySpecError
from pipelines.demo import build_demo
from pipelines.evaluate import evaluate, list_runs, load_run
from pipelines.model_report import model_report, model_runs
from pipelines.monitor import histogram_quantile, monitor, parse_prometheus
from pipelines.policies import list_policies, resolve, validate
from pipelines.preview import clear_cache, preview, score_cutoffs, source_from_raw, with_cutoffs
from pipelines.settings import Settings
from pipelines.sla import sla_kpi_table
from tests.conftest import REPO
from tests.serving_support import Server, api_key, sample_leads

APP = str(REPO / "app.py")


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("pages") / "ws"
    build_demo(Settings(home=home), n_leads=2_000, seed=5, check_quality=True, register_policies=True)
    return home


@pytest.fixture
def own_home(demo_home: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the demo workspace that a test may change (register, train, serve)."""
    home = tmp_path / "ws"
    shutil.copytree(demo_home, home)
    yield home
    clear_cache()


def open_page(home: Path, page: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("LEADROUTE_HOME", str(home))
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page(f"workbench/{page}.py").run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(str(m.value) for m in at.metric if m.label == label)


def test_rules_threshold_slider_previews_the_library_numbers(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=demo_home)
    at = open_page(demo_home, "rules", monkeypatch)
    at.selectbox(key="rules_policy").set_value("seed").run()
    seed = resolve(settings, "seed")
    assert [s.value for s in at.slider] == [80.0, 50.0]
    before = preview(settings, seed)
    assert metric(at, "Expected conversions") == f"{before.expected_conversions()[0]:,.1f}"  # type: ignore[index]

    at.slider[0].set_value(65.0).run()
    assert not at.exception, at.exception
    after = preview(settings, source_from_raw(with_cutoffs(seed.raw, {80.0: 65.0})))
    cand, base = after.expected_conversions(), after.expected_conversions("baseline")
    assert cand is not None and base is not None
    assert metric(at, "Expected conversions") == f"{cand[0]:,.1f}"
    assert metric(at, "Baseline expected conversions") == f"{base[0]:,.1f}"
    assert cand[0] != before.expected_conversions()[0]  # type: ignore[index]
    assert metric(at, "Capacity breaches (rep-days)") == f"{after.candidate.metrics.capacity_breaches:,}"
    assert_frame_equal(pl.from_pandas(at.dataframe[0].value), after.mix())
    assert_frame_equal(pl.from_pandas(at.dataframe[1].value), after.fairness())
    assert_frame_equal(pl.from_pandas(at.dataframe[2].value), after.rep_load(), check_dtypes=False)
    # The moved cut-off is applied to both rules that use it, and the spec shown says so.
    assert any("score is above 65" in c.value for c in at.caption)
    assert any("score is between 50 and 65" in c.value for c in at.caption)


def test_preview_expected_conversions_equal_the_evaluate_direct_method(demo_home: Path) -> None:
    """The preview's cached cross-fitting is `leadroute evaluate`'s: same DM value and interval."""
    settings = Settings(home=demo_home)
    result = preview(settings, "seed", baseline="round_robin")
    run = evaluate(settings, ["round_robin", "seed"], estimators=["dm"], store=False)
    seed_dm = run.comparison.policies[1].estimates["dm"].interval
    diff = run.comparison.policies[1].diff_vs_first["dm"].interval
    assert seed_dm is not None and diff is not None and result.candidate.dm is not None
    shown = result.candidate.dm.interval
    assert shown is not None and result.difference is not None and result.difference.interval is not None
    assert shown.value == pytest.approx(seed_dm.value, abs=1e-12)
    assert shown.ci_low == pytest.approx(seed_dm.ci_low, abs=1e-12)
    assert result.difference.interval.value == pytest.approx(diff.value, abs=1e-12)
    assert result.n_matured == run.comparison.n_leads


def test_rules_validation_is_inline_and_save_registers_a_new_version_with_its_diff(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=own_home)
    at = open_page(own_home, "rules", monkeypatch)
    at.selectbox(key="rules_policy").set_value("seed").run()
    seed = resolve(settings, "seed")
    assert [c.value for c in score_cutoffs(seed.raw)] == [80.0, 50.0]
    assert at.button(key="rules_save").disabled  # nothing changed yet

    # The warm/cold cut-off above the hot one: warm's range is empty — said inline, nothing to save.
    at.slider[1].set_value(90.0).run()
    assert not at.exception, at.exception
    with pytest.raises(PolicySpecError) as refused:
        source_from_raw(with_cutoffs(seed.raw, {50.0: 90.0}), "seed (edited)")
    assert [e.value for e in at.error] == list(refused.value.problems)
    assert not any(b.key == "rules_save" for b in at.button)

    at.slider[1].set_value(50.0)
    at.slider[0].set_value(70.0).run()
    edited = source_from_raw(with_cutoffs(seed.raw, {80.0: 70.0}))
    report = validate(settings, edited)
    assert [e.value for e in at.error] == list(report.errors)
    assert [w.value for w in at.warning] == list(report.warnings)
    assert not at.button(key="rules_save").disabled
    at.button(key="rules_save").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Registered **seed@2**."
    versions = list_policies(settings).filter(pl.col("name") == "seed")["version"].to_list()
    assert versions == [1, 2]
    changes = at.dataframe[-1].value["change"].tolist()
    assert any("above 70" in line for line in changes)
    stored = resolve(settings, "seed@2")
    assert score_cutoffs(stored.raw)[0].value == 70.0
    at.run()  # the page now edits seed@2: its sliders start at the saved cut-offs
    assert [s.value for s in at.slider] == [70.0, 50.0]


def test_compare_runs_an_offline_ab_and_shows_the_evaluation(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=demo_home)
    at = open_page(demo_home, "compare", monkeypatch)
    assert "No comparison yet" in at.info[0].value
    at.multiselect(key="compare_policies").set_value(["seed", "round_robin"])
    at.multiselect(key="compare_estimators").set_value(["dm", "dr"])
    at.number_input(key="compare_folds").set_value(2)
    at.button[0].click().run()
    assert not at.exception, at.exception
    runs = list_runs(settings)
    stored = load_run(settings, runs["run_id"][0])
    fresh = evaluate(settings, ["seed", "round_robin"], estimators=["dm", "dr"], folds=2, store=False).to_json()
    shown = pl.from_pandas(at.dataframe[0].value)
    expected = differences_table(fresh).filter(pl.col("valid")).drop("valid")
    assert_frame_equal(shown, expected, check_dtypes=False)
    assert_frame_equal(shown, differences_table(stored).filter(pl.col("valid")).drop("valid"), check_dtypes=False)
    assert at.subheader[0].value.endswith(f"{stored['n_leads']:,} matured leads")
    # Segments switch without recomputing.
    at.selectbox(key="compare_segment").set_value("score_tier").run()
    assert not at.exception
    assert set(at.dataframe[2].value["segment"]) == {"score_tier"}


def test_model_page_retrains_with_progress_and_shows_the_report(
    own_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(home=own_home)
    at = open_page(own_home, "model", monkeypatch)
    assert "No model trained yet" in at.info[0].value
    at.button(key="model_retrain").click().run()
    assert not at.exception, at.exception
    assert any("lead-score v1" in c.value for c in at.caption)
    runs = model_runs(settings)
    assert runs.height == 2 and len(at.dataframe[0].value) == runs.height
    report = model_report(settings, "lead-score")
    assert report.metrics.roc_auc is not None and report.metrics.ece is not None
    assert metric(at, "ROC AUC") == f"{report.metrics.roc_auc:.3f}"
    assert metric(at, "Calibration error (ECE)") == f"{report.metrics.ece:.3f}"
    assert list(at.dataframe[1].value["feature"]) == report.drift["feature"].to_list()


def test_monitor_reads_a_real_endpoints_log_and_metrics(own_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=own_home)
    server = Server(settings, extra_args=("--no-model",)).start()
    try:
        key = api_key(settings)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
            for lead in sample_leads(settings, 40):
                assert client.post("/v1/route", json=lead).status_code == 200
        summary = monitor(settings, window=timedelta(hours=1), endpoint_url=server.url, api_key=key)
        monkeypatch.setenv("LEADROUTE_ENDPOINT_URL", server.url)
        monkeypatch.setenv("LEADROUTE_API_KEY", key)
        at = open_page(own_home, "monitor", monkeypatch)
    finally:
        server.stop()
    assert summary.n_decisions == 40 and summary.endpoint is not None
    assert metric(at, "Decisions logged") == "40"
    assert metric(at, "In the last 1 hour") == "40"
    assert summary.endpoint.p99_s is not None
    # The app scraped /metrics again after the summary above (each scrape is itself counted; the
    # Overview, run first, scrapes too): no 5xx, and at least one more request than before.
    errors, _, total = metric(at, "5xx errors").partition(" of ")
    assert errors == "0" and int(total.replace(",", "")) > summary.endpoint.requests
    assert metric(at, "Latency p99") == f"{summary.endpoint.p99_s * 1000:.1f} ms"
    assert summary.endpoint.requests >= 40
    assert summary.mix is not None
    shown_mix = pl.from_pandas(at.dataframe[0].value)
    assert_frame_equal(shown_mix, summary.mix.table, check_dtypes=False)
    stream = at.dataframe[-1].value
    assert len(stream) == 40 and set(stream["policy"]) == {"seed"}
    # The endpoint's SLA timer reports stuck leads by kind; the SLA table is pipelines.sla's.
    assert set(summary.endpoint.stuck_leads) == {"past_sla", "in_queue", "absent_owner", "over_capacity"}
    assert metric(at, "Stuck: past sla") == f"{summary.endpoint.stuck_leads['past_sla']:,}"
    shown_sla = pl.from_pandas(at.dataframe[-2].value)
    expected_sla = sla_kpi_table(settings, "team")
    assert shown_sla["group"].to_list() == expected_sla["group"].to_list()
    assert shown_sla["leads"].to_list() == expected_sla["leads"].to_list()
    at.selectbox(key="monitor_window").set_value("15 minutes").run()
    assert not at.exception
    assert metric(at, "In the last 15 minutes") == "40"


def test_prometheus_histogram_percentiles_follow_the_endpoint_metrics() -> None:
    metrics = Metrics()
    for seconds in [0.001] * 90 + [0.02] * 9 + [0.3]:
        metrics.observe_latency("/v1/route", seconds)
    samples = parse_prometheus(metrics.render())
    buckets = [
        (float("inf") if labels["le"] == "+Inf" else float(labels["le"]), value)
        for name, labels, value in samples
        if name == "leadroute_request_duration_seconds_bucket"
    ]
    assert buckets[-1][1] == 100
    p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
    assert p50 is not None and p50 <= 0.001 + 1e-12
    assert p99 is not None and 0.005 < p99 <= 0.05  # the 99th of 100 lies in the 0.02 s bucket


@pytest.mark.parametrize(
    ("page", "says"),
    [
        ("rules", "leadroute demo"),
        ("compare", "leadroute demo"),
        ("model", "leadroute demo"),
        ("monitor", "leadroute serve"),
    ],
)
def test_empty_workspace_pages_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str, says: str
) -> None:
    at = open_page(tmp_path / "empty", page, monkeypatch)
    assert says in at.info[0].value
