"""Hostile input beyond tests/test_ingest_fuzz.py: property tests of the import parser (quotes,
NULs, huge fields, wrong encodings, declared encodings), of mapping files and of policy specs;
path traversal through uploads, mapping names and policy references; values crafted as SQL or
code in every user-supplied string. Expected: a clear error or a reject, never another exception;
what is stored is stored literally, nothing is executed, the tables stay intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from leadroute.cli import app as cli_app
from models.canonical import ROW_NUMBER
from models.policy import PolicySpecError
from models.policy.conditions import evaluate
from pipelines import experiments
from pipelines.deployments import deploy, rollback
from pipelines.ingest import IngestError, ingest_file
from pipelines.mapping import Mapping, MappingError, apply_mapping, derive_records, drop_columns, load_mapping
from pipelines.policies import PolicyNotFoundError, parse_text, register, resolve
from pipelines.settings import Settings
from pipelines.uploads import UploadError, import_upload, safe_upload_name
from pipelines.warehouse import TABLES, Warehouse, query_frame
from tests.hardening_support import workspace_copy

FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
PASSWD = Path("/etc/passwd")


def _one_clear_line(error: Exception) -> None:
    text = str(error)
    assert text.strip() and "\n" not in text and "Traceback" not in text, text


# -- the import parser --------------------------------------------------------------------------

hostile_fields = st.one_of(
    st.sampled_from(
        ['"', '""', '"a,b"', '"open', "a\x00b", "\x00", "\r", "\ufeff", "Müller", "€", "x" * 70_000, "'; DROP TABLE"]
    ),
    st.text(max_size=6),
)


@FUZZ
@given(
    rows=st.lists(st.lists(hostile_fields, min_size=1, max_size=4), max_size=6),
    valid=st.integers(0, 3),
    write_as=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16"]),
    declared=st.sampled_from([None, "utf-8", "latin-1", "utf-16", "klingon"]),
)
def test_hostile_csv_is_refused_whole_or_loaded_with_rejects_and_counts_add_up(
    tmp_path: Path, rows: list[list[str]], valid: int, write_as: str, declared: str | None
) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    lines = ["lead_id,created_at,notes", *(f"ok{i},2025-01-0{1 + i},fine" for i in range(valid))]
    lines += [",".join(row) for row in rows]
    path = tmp_path / "hostile.csv"
    path.write_bytes("\n".join(lines).encode(write_as, errors="replace") + b"\n")
    mapping = None
    if declared is not None:
        mapping = tmp_path / "declared.yaml"
        mapping.write_text(f"encoding: {declared}\n", encoding="utf-8")
    before = warehouse.table_counts() if warehouse.path.exists() else {"leads": 0, "rejects": 0}
    try:
        summary = ingest_file(warehouse, "leads", path, mapping)
    except IngestError as error:
        _one_clear_line(error)
        after = warehouse.table_counts() if warehouse.path.exists() else before
        assert (after["leads"], after["rejects"]) == (before["leads"], before["rejects"])
        return
    c = summary.counts
    assert c.read == c.loaded + c.updated + c.rejected
    after = warehouse.table_counts()
    assert after["leads"] - before["leads"] == c.loaded
    assert after["rejects"] - before["rejects"] == c.rejected
    assert c.rejected == sum(summary.reject_reasons.values())


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(
    records=st.lists(
        st.dictionaries(
            st.sampled_from(["lead_id", "created_at", "employees", "score", "", "a b", "'; DROP TABLE leads; --"]),
            json_values,
            max_size=5,
        ),
        min_size=1,
        max_size=5,
    )
)
def test_random_json_records_are_loaded_or_rejected_never_a_crash(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    before = warehouse.table_counts()["leads"] if warehouse.path.exists() else 0
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    try:
        summary = ingest_file(warehouse, "leads", path)
    except IngestError as error:
        _one_clear_line(error)
        return
    c = summary.counts
    assert c.read == c.loaded + c.updated + c.rejected == len(records)
    assert warehouse.table_counts()["leads"] - before == c.loaded


def test_an_array_where_a_field_takes_one_value_is_rejected_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "arrays.jsonl"
    path.write_text(
        '{"lead_id": "a", "created_at": "2025-01-01", "employees": 5}\n'
        '{"lead_id": "b", "created_at": "2025-01-01", "employees": [1, 2]}\n',
        encoding="utf-8",
    )
    summary = ingest_file(Warehouse(tmp_path / "w.duckdb"), "leads", path)
    assert (summary.counts.loaded, summary.counts.rejected) == (1, 1)


def test_a_file_of_empty_json_objects_is_refused_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "empty_objects.jsonl"
    path.write_text("{}\n{}\n", encoding="utf-8")
    with pytest.raises(IngestError):
        ingest_file(Warehouse(tmp_path / "w.duckdb"), "leads", path)


def test_a_deeply_nested_json_line_is_rejected_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text('{"lead_id": "a", "created_at": "2025-01-01"}\n{"lead_id": "b", "x": ' + deep + "}\n")
    summary = ingest_file(Warehouse(tmp_path / "w.duckdb"), "leads", path)
    assert (summary.counts.loaded, summary.counts.rejected) == (1, 1)


def test_a_lone_surrogate_in_json_is_rejected_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "surrogate.jsonl"
    path.write_text(
        '{"lead_id": "a", "created_at": "2025-01-01"}\n{"lead_id": "\\ud800", "created_at": "2025-01-01"}\n'
    )
    summary = ingest_file(Warehouse(tmp_path / "w.duckdb"), "leads", path)
    assert (summary.counts.loaded, summary.counts.rejected) == (1, 1)


# -- mapping files --------------------------------------------------------------------------------

MAPPING_KEYS = [*Mapping.model_fields, "bogus"]
SOURCE_COLUMNS = ["lead_id", "created_at", "company", "a"]
yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.sampled_from(SOURCE_COLUMNS),
    st.text(max_size=6),
)  # fmt: skip
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from([*SOURCE_COLUMNS, "when", "column", "start"]), st.text(max_size=4)),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=10,
)
mapping_documents = st.one_of(yaml_values, st.dictionaries(st.sampled_from(MAPPING_KEYS), yaml_values, max_size=5))


@FUZZ
@given(document=mapping_documents)
def test_random_mapping_files_give_a_clear_error_naming_the_problem_or_apply(tmp_path: Path, document: Any) -> None:
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    try:
        mapping = load_mapping(path)
    except MappingError as error:
        _one_clear_line(error)
        assert str(error).startswith("mapping random.yaml: ") and len(str(error)) > len("mapping random.yaml: ")
        return
    records = pl.DataFrame({c: ["x1", "2025-01-01"] for c in SOURCE_COLUMNS}).with_row_index(ROW_NUMBER, offset=1)
    records = records.with_columns(pl.col(ROW_NUMBER).cast(pl.Int64))
    try:
        frame = apply_mapping(mapping, records)
        derive_records(mapping, frame, "leads")
        drop_columns(mapping, frame)
    except MappingError as error:
        _one_clear_line(error)
        assert str(error).startswith("mapping ")


@FUZZ
@given(text=st.text(max_size=200))
def test_random_text_as_a_mapping_file_is_a_clear_error_or_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "text.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_mapping(path)
    except MappingError as error:
        _one_clear_line(error)
        assert str(error).startswith("mapping text.yaml: ")


def test_a_rename_onto_an_existing_column_is_a_mapping_error(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("lead_id,created_at,a\nA,2025-01-01,1\n", encoding="utf-8")
    mapping = tmp_path / "collide.yaml"
    mapping.write_text("rename: {a: created_at}\n", encoding="utf-8")
    with pytest.raises(IngestError, match="rename"):
        ingest_file(Warehouse(tmp_path / "w.duckdb"), "leads", source, mapping)


# -- policy specs ---------------------------------------------------------------------------------

conditions = st.one_of(
    st.fixed_dictionaries(
        {"field": st.sampled_from(["score", "country", "employees", "bad name", ""]),
         "op": st.sampled_from([">", "<", "=", "between", "in", "contains", "is missing", "~", ""]),
         "value": yaml_values},
    ),
    yaml_values,
)  # fmt: skip
rules = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["hot", "cold"]), yaml_scalars), "when": conditions},
    optional={
        "then": st.one_of(
            st.fixed_dictionaries(
                {"team": st.sampled_from(["enterprise", "smb", "queue", "nowhere", "x'); --"])},
                optional={"method": st.sampled_from(["round_robin", "weighted", "best_fit", "teleport"]),
                          "notify": yaml_values, "fallback": yaml_values},
            ),
            yaml_values,
        ),
    },
)  # fmt: skip
policy_documents = st.one_of(
    yaml_values,
    st.fixed_dictionaries(
        {"name": st.one_of(st.just("p"), yaml_scalars), "rules": st.one_of(st.lists(rules, max_size=3), yaml_values)},
        optional={"fallback": st.one_of(st.just({"team": "queue"}), yaml_values), "bogus": yaml_values},
    ),
)


@FUZZ
@given(document=policy_documents)
def test_random_policy_specs_are_a_policy_or_a_spec_error(document: Any) -> None:
    try:
        source = parse_text(yaml.safe_dump(document), "random.yaml")
    except PolicySpecError as error:
        assert error.problems and all(isinstance(p, str) and p.startswith("random.yaml: ") for p in error.problems)
        return
    assert source.spec.name and isinstance(source.raw, dict)


@FUZZ
@given(text=st.text(max_size=300))
def test_random_text_as_a_policy_is_a_policy_or_a_spec_error(text: str) -> None:
    try:
        parse_text(text, "text.yaml")
    except PolicySpecError as error:
        assert error.problems


# -- path traversal -----------------------------------------------------------------------------

TRAVERSALS = [
    "../../etc/passwd",
    "/etc/passwd",
    "..\\..\\windows\\win.ini",
    "mappings/../../../etc/passwd",
    "~/.ssh/id_rsa",
]


@FUZZ
@given(name=st.text(min_size=1, max_size=40))
def test_any_upload_name_stays_inside_the_uploads_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "uploads"
    try:
        safe = safe_upload_name(name)
    except UploadError as error:
        _one_clear_line(error)
        return
    assert (folder / f"20260101T000000000000-{safe}").resolve().parent == folder.resolve()
    assert not safe.startswith(".") and "/" not in safe and "\\" not in safe


@pytest.mark.parametrize("reference", TRAVERSALS)
def test_mapping_names_from_the_app_cannot_point_outside_the_shipped_mappings(tmp_path: Path, reference: str) -> None:
    settings = Settings(home=tmp_path / "ws")
    with pytest.raises(UploadError, match="not one of the shipped mapping files"):
        import_upload(settings, "leads", "leads.csv", b"lead_id,created_at\nT1,2025-01-01\n", reference)
    uploads = settings.imports_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())  # nothing stored, nothing imported
    assert not settings.warehouse_path.exists()


def test_an_upload_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "ws").ensure()
    outside = tmp_path / "outside.csv"
    outside.write_text("precious\n", encoding="utf-8")
    uploads = settings.imports_dir / "uploads"
    uploads.mkdir(parents=True)
    (uploads / "leads.csv").symlink_to(outside)
    summary = import_upload(settings, "leads", "leads.csv", b"lead_id,created_at\nS1,2025-01-01\n")
    stored = Path(summary.source_file)
    assert not stored.is_symlink() and stored.resolve().parent == uploads.resolve()
    assert outside.read_text(encoding="utf-8") == "precious\n"


@pytest.mark.parametrize("reference", [*TRAVERSALS, "seed@../../etc/passwd", "../../etc/passwd@1"])
def test_policy_references_do_not_read_files_outside(tmp_path: Path, reference: str) -> None:
    settings = Settings(home=tmp_path / "ws")
    with pytest.raises(PolicyNotFoundError) as caught:
        resolve(settings, reference)
    assert "root:" not in str(caught.value)
    result = CliRunner().invoke(cli_app, ["policy", "show", reference], env={"LEADROUTE_HOME": str(settings.home)})
    assert result.exit_code != 0 and "root:" not in result.output


@pytest.mark.skipif(not PASSWD.is_file(), reason="needs /etc/passwd")
def test_a_system_file_given_as_a_mapping_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as caught:
        load_mapping(PASSWD)
    _one_clear_line(caught.value)
    assert "root:" not in str(caught.value)


# -- values crafted as SQL or code ----------------------------------------------------------------

MARKER = "hardening-pwned"


def crafted(tmp_path: Path) -> list[str]:
    return [
        "'; DROP TABLE leads; --",
        'Robert"); DROP TABLE reps; --',
        "1 OR 1=1",
        "{{7*7}}",
        "${7*7}",
        f"__import__('os').system('touch {tmp_path / MARKER}')",
        f"$(touch {tmp_path / MARKER})",
        "<script>alert(1)</script>",
    ]


def test_crafted_values_in_every_user_string_are_stored_literally_or_refused(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    settings = workspace_copy(tmp_path_factory, tmp_path / "ws", train=False)
    values = crafted(tmp_path)
    warehouse = Warehouse(settings.warehouse_path)
    before = warehouse.table_counts()

    # Lead fields, extra attribute names and values, through an import.
    frame = pl.DataFrame(
        {
            "lead_id": [f"x{i}{v}" for i, v in enumerate(values)],
            "created_at": ["2026-01-05T10:00:00Z"] * len(values),
            "company": values,
            "industry": values,
            values[0]: values,  # an extra column named like SQL
            values[5]: values,  # and one named like code
        }
    )
    source = tmp_path / "crafted.csv"
    frame.write_csv(source)
    summary = ingest_file(warehouse, "leads", source)
    assert (summary.counts.loaded, summary.counts.rejected) == (len(values), 0)
    with warehouse.connect(read_only=True) as con:
        stored = query_frame(
            con, "SELECT lead_id, company, industry, extra FROM leads WHERE lead_id LIKE 'x%' ORDER BY lead_id", []
        )
    stored = stored.filter(pl.col("lead_id").is_in(frame["lead_id"].implode()))
    by_id = {row["lead_id"]: row for row in stored.iter_rows(named=True)}
    for i, value in enumerate(values):
        row = by_id[f"x{i}{value}"]
        assert row["company"] == value and row["industry"] == value
        extra = json.loads(row["extra"])
        assert extra[values[0]] == value and extra[values[5]] == value

    # Policy names are refused; a rule value is refused or compared as the literal text.
    for value in values:
        with pytest.raises(PolicySpecError):
            parse_text(f"name: {json.dumps(value)}\nrules: []\nfallback: {{team: queue}}\n", "crafted.yaml")
        spec = (
            "name: p\nrules:\n  - name: r\n    when: {field: country, op: '=', value: " + json.dumps(value) + "}\n"
            "    then: {team: smb}\nfallback: {team: queue}\n"
        )
        try:
            policy = parse_text(spec, "crafted.yaml")
        except PolicySpecError as error:
            assert "looks like code or SQL" in error.problems[0], error.problems
        else:
            assert policy.raw["rules"][0]["when"]["value"] == value
            assert evaluate(policy.spec.rules[0].when, {"country": value})
            assert not evaluate(policy.spec.rules[0].when, {"country": "49"})
    raw = dict(resolve(settings, "seed").raw)
    raw["description"] = " ".join(values)
    raw["rules"] = [dict(rule, description=value) for rule, value in zip(raw["rules"], values, strict=False)]
    registered = register(settings, parse_text(yaml.safe_dump(raw), "seed.yaml"))
    again = resolve(settings, f"seed@{registered.version}").raw
    assert again["description"] == " ".join(values)
    assert [rule["description"] for rule in again["rules"]] == values[: len(again["rules"])]

    # Experiment names are refused; reasons are kept as written.
    for value in values:
        with pytest.raises(ValueError, match="experiment name"):
            experiments.start(settings, value, ["seed", "round_robin"], predict=False)
    for value in values:
        deploy(settings, "seed", reason=value)
        deploy(settings, "round_robin", reason=value)
        rollback(settings, reason=value)
    with warehouse.connect(read_only=True) as con:
        reasons = [r[0] for r in con.execute("SELECT reason FROM deployments ORDER BY deployment_id").fetchall()]
    assert [r for r in reasons if r in values] == [v for v in values for _ in range(3)]

    # Nothing ran, nothing was dropped.
    assert not (tmp_path / MARKER).exists()
    after = warehouse.table_counts()
    assert set(after) == set(TABLES)
    assert after["leads"] == before["leads"] + len(values)
    for table in ("reps", "teams", "outcomes", "accounts", "decisions"):
        assert after[table] == before[table], table
