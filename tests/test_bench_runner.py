"""benchmarks/run_all.py without running the benchmarks: the README has its markers, the quick
sizes name flags the scripts really take, and a table is spliced between the markers only."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO


def runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("run_all", REPO / "benchmarks" / "run_all.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_readme_has_one_bench_section() -> None:
    run_all = runner()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.count(run_all.START) == 1 and readme.count(run_all.END) == 1
    assert readme.index(run_all.START) < readme.index(run_all.END)


def test_quick_and_full_sizes_name_flags_each_script_accepts() -> None:
    run_all = runner()
    found = {path.stem: path for path in run_all.scripts(None)}
    assert "run_all" not in found and {"ingest", "replay", "endpoint"} <= set(found)
    for table in (run_all.QUICK_ARGS, run_all.FULL_ARGS):
        for stem, args in table.items():
            source = found[stem].read_text(encoding="utf-8")
            assert '"--json"' in source
            for flag in (a for a in args if a.startswith("--")):
                assert f'"{flag}"' in source, (stem, flag)


def test_a_table_replaces_only_the_bench_section(tmp_path: Path) -> None:
    run_all = runner()
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{run_all.START}\nold | table\n{run_all.END}\nafter\n", encoding="utf-8")
    figures = {
        "leads": 1000, "leads_per_s": 500.0, "raw_leads_per_s": 1000.0, "ratio": 0.5, "seconds": 2.0,
        "raw_seconds": 1.0, "target_ratio": 0.3,
    }  # fmt: skip
    outcomes = [
        run_all.Outcome("ingest", "python benchmarks/ingest.py --json", 1.0, figures),
        run_all.Outcome("new_one", "python benchmarks/new_one.py --json", 1.0, {"widgets_per_s": 12.5, "ok": True}),
        run_all.Outcome("broken", "python benchmarks/broken.py --json", 1.0, None, "exit code 1"),
    ]
    text = run_all.table(outcomes, quick=True)
    run_all.write_readme(readme, text)
    written = readme.read_text(encoding="utf-8")
    assert written.startswith("# title\n\nbefore\n") and written.endswith(f"{run_all.END}\nafter\n")
    assert "old | table" not in written
    assert "| 500 leads/s | DuckDB raw `read_csv` into a table: 1,000 rows/s | 0.50 | ≥ 0.3 — met |" in written
    assert "| `new_one.py` | widgets_per_s 12.5 |" in written
    assert "| `broken.py` | **failed**: exit code 1 |" in written
    readme.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="needs one"):
        run_all.write_readme(readme, text)
