"""The Experiments and Deploy pages through AppTest: the numbers shown are the library's, and the
buttons start, stop, canary and roll back through the same calls as the CLI."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from leadroute.serving.traffic import simulate_traffic
from pipelines.demo import build_demo
from pipelines.deployments import deploy, history, live_deployment
from pipelines.experiments import read_out, start, stop
from pipelines.policies import parse_text, register
from pipelines.rollout import rollouts
from pipelines.settings import Settings
from tests.conftest import REPO

APP = str(REPO / "app.py")
QUEUE_ALL = "name: queue_all\nrules:\n  - name: everyone\n    then: {team: queue}\nfallback: {team: queue}\n"


@pytest.fixture(scope="module")
def experiment_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("app-exp") / "ws"
    settings = Settings(home=home)
    build_demo(settings, n_leads=2_000, seed=5, register_policies=True)
    register(settings, parse_text(QUEUE_ALL, "queue_all.yaml"))
    deploy(settings, "round_robin")
    start(settings, "done-ab", ["round_robin", "queue_all"], predict=False, salt="s1", expected_leads=2_000)
    simulate_traffic(settings, prefix="t1-", seed=1)
    stop(settings, "done-ab", as_of=datetime.now(UTC) + timedelta(days=40))
    start(settings, "live-ab", ["round_robin", "territory"], predict=False, salt="s2")
    simulate_traffic(settings, prefix="t2-", seed=2, n_leads=400)
    return home


def _button(at: AppTest, label: str) -> object:
    return next(b for b in at.button if b.label == label)


def test_experiments_page_shows_the_stored_read_out_and_a_running_one(
    experiment_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADROUTE_HOME", str(experiment_home))
    settings = Settings(home=experiment_home)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("workbench/experiments.py").run()
    assert not at.exception
    at.selectbox(key="exp_pick").set_value("done-ab").run()
    assert not at.exception
    expected = read_out(settings, "done-ab")
    shown = [m.value.removeprefix("Verdict: ") for m in [*at.success, *at.info]]
    assert expected["verdict"]["message"] in shown
    arms = at.dataframe[1].value  # the experiment list, then the allocation table
    assert list(arms["decided"]) == [a["decided"] for a in expected["arms"]]
    lift = at.dataframe[2].value
    primary = next(c for c in expected["comparisons"] if c["metric"] == "conversion")
    assert float(lift["lift"].iloc[0]) == pytest.approx(primary["headline"]["lift"])
    assert float(lift["ci low (always valid)"].iloc[0]) == pytest.approx(primary["headline"]["ci_low"])

    at.selectbox(key="exp_pick").set_value("live-ab").run()
    assert not at.exception
    running = read_out(settings, "live-ab")
    assert [a["decided"] for a in running["arms"]] == list(at.dataframe[1].value["decided"])
    assert sum(a["decided"] for a in running["arms"]) == 400
    assert any("no verdict yet" in i.value for i in at.info)  # nothing has matured today

    at.text_input(key="exp_name").set_value("bad name!")
    at.multiselect(key="exp_policies").set_value(["round_robin", "territory"])
    _button(at, "Start (the endpoint picks it up without a restart)").click().run()  # type: ignore[attr-defined]
    assert any("experiment name" in e.value for e in at.error)


def test_deploy_page_starts_a_canary_and_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(home=tmp_path / "ws")
    build_demo(settings, n_leads=1_000, seed=6, register_policies=True)
    deploy(settings, "round_robin", reason="start here")
    monkeypatch.setenv("LEADROUTE_HOME", str(settings.home))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("workbench/deploy.py").run()
    assert not at.exception
    live = live_deployment(settings)
    assert live is not None and at.metric[0].value == f"#{live[0]}"
    assert len(at.dataframe[-1].value) == history(settings).height == 1

    refs = at.selectbox(key="deploy_ref").options
    at.selectbox(key="deploy_ref").set_value(next(r for r in refs if r.startswith("territory@")))
    at.slider(key="deploy_canary").set_value(10)
    _button(at, "Start canary").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert any("canary at 10%" in s.value for s in at.success)
    assert rollouts(settings)[0].status == "running" and rollouts(settings)[0].share == pytest.approx(0.10)

    at.run()
    _button(at, "Look at the canary now").click().run()  # type: ignore[attr-defined]
    assert any("hold" in i.value for i in at.info)
    _button(at, "Roll back").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert rollouts(settings)[0].status == "rolled_back"
    live = live_deployment(settings)
    assert live is not None and [a["policy"] for a in live[1]] == ["round_robin"]
    assert history(settings)["kind"].to_list() == ["rollback", "canary", "deploy"]
