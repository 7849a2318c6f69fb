"""The job's transforms, one at a time: per-record parsing and normalisation, then each DataFrame step."""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from typing import Any

import dataset_transforms as transforms
import pytest
from pyspark.sql import DataFrame, SparkSession


def _validated_frame(spark: SparkSession, rows: list[dict[str, Any]]) -> DataFrame:
    """Rows shaped like the readers' output, with the columns later steps add (text, label, id)."""
    full = []
    for row in rows:
        full.append(
            {
                "source_file": row.get("source_file", "file:///in/a.jsonl"),
                "original": row.get("original", f"{row.get('text')}|{row.get('label')}"),
                "original_base64": None,
                "text_raw": row.get("text"),
                "label_raw": row.get("label"),
                "id_raw": row.get("id"),
                "has_text_field": True,
                "has_label_field": True,
                "has_id_field": row.get("id") is not None,
                "reject_reason": row.get("reject_reason"),
                "reject_detail": None,
            }
        )
    schema = "source_file string, " + ", ".join(
        f"{field.name} {field.dataType.simpleString()}" for field in transforms.PARSED_RECORD_SCHEMA.fields
    )
    return spark.createDataFrame(full, schema=schema)


def _prepared(
    spark: SparkSession, rows: list[dict[str, Any]], *, derive_ids: bool = True, **validation: Any
) -> DataFrame:
    frame = transforms.normalise(_validated_frame(spark, rows), derive_ids=derive_ids)
    settings = {"min_chars": 1, "max_chars": 100, "allowed_labels": None, "require_id": not derive_ids, **validation}
    return transforms.validate(frame, **settings)


# --- per-record functions --------------------------------------------------------------------------------------------


def test_normalise_text_composes_unicode_removes_controls_and_collapses_whitespace() -> None:
    assert transforms.normalise_text("  cafe\u0301\t\tau\x00 lait\r\n\u00a0ok\ufeff ") == "café au lait ok"


def test_normalise_text_returns_none_when_nothing_is_left() -> None:
    assert transforms.normalise_text(" \t\x07\n ") is None
    assert transforms.normalise_text(None) is None


def test_normalise_label_trims_and_keeps_inner_spacing() -> None:
    assert transforms.normalise_label("  small talk \n") == "small talk"
    assert transforms.normalise_label("   ") is None


def test_parse_jsonl_line_keeps_undecodable_bytes_as_base64() -> None:
    raw = b'{"text": "caf\xe9", "label": "food"}'
    parsed = transforms.parse_jsonl_line(raw, "utf-8", "text", "label", None)
    assert parsed[8] == transforms.REASON_UNDECODABLE
    assert parsed[0] is None
    assert base64.b64decode(parsed[1]) == raw
    assert "offset 13" in parsed[9]


def test_parse_jsonl_line_decodes_the_declared_encoding_and_strips_a_byte_order_mark() -> None:
    raw = '\ufeff{"text": "café", "label": "food", "id": 7}'.encode("utf-8")
    parsed = transforms.parse_jsonl_line(raw, "utf-8", "text", "label", "id")
    assert parsed[2:5] == ("café", "food", "7")
    assert parsed[8] is None
    latin1 = transforms.parse_jsonl_line(
        '{"text": "café", "label": "x"}'.encode("cp1252"), "cp1252", "text", "label", None
    )
    assert latin1[2] == "café"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"not json", transforms.REASON_MALFORMED),
        (b"[1, 2]", transforms.REASON_MALFORMED),
        (b"   ", transforms.REASON_BLANK_LINE),
        (b'{"text": 42, "label": "a"}', transforms.REASON_INVALID_FIELD_TYPE),
        (b'{"text": "t", "label": ["a"]}', transforms.REASON_INVALID_FIELD_TYPE),
        (b'{"text": "t", "label": true}', transforms.REASON_INVALID_FIELD_TYPE),
    ],
)
def test_parse_jsonl_line_rejects_with_reason_and_keeps_the_line(line: bytes, reason: str) -> None:
    parsed = transforms.parse_jsonl_line(line, "utf-8", "text", "label", None)
    assert parsed[8] == reason
    assert parsed[0] == line.decode()
    assert parsed[9]


def test_parse_jsonl_line_reports_which_fields_are_present() -> None:
    parsed = transforms.parse_jsonl_line(b'{"body": "t", "label": 3}', "utf-8", "text", "label", None)
    assert parsed[2:8] == (None, "3", None, False, True, False)


def test_parse_csv_record_restores_original_bytes_before_decoding() -> None:
    fields = ["caf\xe9", "food"]  # Spark read the bytes as ISO-8859-1, one character per byte
    as_cp1252 = transforms.parse_csv_record(fields, None, "cp1252", 0, 1, None)
    assert as_cp1252[2:4] == ("café", "food")
    as_utf8 = transforms.parse_csv_record(fields, None, "utf-8", 0, 1, None)
    assert as_utf8[8] == transforms.REASON_UNDECODABLE
    assert base64.b64decode(as_utf8[1]) == b"caf\xe9,food"
    utf8_bytes = ['é, "quoted"\nline'.encode().decode("latin-1"), "x"]
    decoded = transforms.parse_csv_record(utf8_bytes, None, "utf-8", 0, 1, None)
    assert decoded[2] == 'é, "quoted"\nline'
    assert decoded[0] == '"é, ""quoted""\nline",x'


def test_parse_csv_record_quarantines_a_record_with_the_wrong_field_count() -> None:
    parsed = transforms.parse_csv_record(["a", "b"], "a,b,c", "utf-8", 0, 1, None)
    assert parsed[8] == transforms.REASON_MALFORMED
    assert parsed[0] == "a,b,c"


def test_parse_csv_record_quarantines_every_record_of_a_file_whose_header_lacks_a_field() -> None:
    detail = "file:/in/b.csv has the CSV header ['body', 'label']: it has no --text_field='text' column"
    parsed = transforms.parse_csv_record(["hi", "greeting"], None, "utf-8", None, None, None, detail)
    assert parsed[8] == transforms.REASON_MISSING_COLUMN
    assert (parsed[0], parsed[9]) == ("hi,greeting", detail)
    assert parsed[2:5] == (None, None, None)
    undecodable = transforms.parse_csv_record(["caf\xe9", "x"], None, "utf-8", None, None, None, detail)
    assert undecodable[8] == transforms.REASON_MISSING_COLUMN
    assert base64.b64decode(undecodable[1]) == b"caf\xe9,x"
    malformed = transforms.parse_csv_record(["a", "b"], "a,b,c", "utf-8", None, None, None, detail)
    assert (malformed[8], malformed[0]) == (transforms.REASON_MISSING_COLUMN, "a,b,c")


@pytest.mark.parametrize(
    ("head", "complete", "expected"),
    [
        (b"text,label\nhello,a\n", True, ("text", "label")),
        (b"\xef\xbb\xbf label , text\r\nx,y", True, ("label", "text")),  # BOM and spaces dropped
        (b'\n\n"the, text",label\n', True, ("the, text", "label")),  # leading blank lines, quoted comma
        (b'"multi\nline",label\nrow', False, ("multi\nline", "label")),  # complete header, cut later
        (b'"multi\nline",lab', False, None),  # the header itself is cut: read more
        (b'"still open\n', False, None),
        (b"caf\xe9,label\n", True, ("caf\ufffd", "label")),  # undecodable in utf-8: replaced, never an error
        (b"\n  \n", True, ()),
    ],
)
def test_parse_csv_header_finds_the_record_spark_drops_as_header(
    head: bytes, complete: bool, expected: tuple[str, ...] | None
) -> None:
    assert transforms.parse_csv_header(head, "utf-8", complete=complete) == expected


def test_csv_header_problem_names_missing_and_ambiguous_fields() -> None:
    fields = {"text_field": "text", "label_field": "label", "id_field": None}
    assert transforms.csv_header_problem(("label", "text"), **fields) is None
    assert transforms.csv_header_problem(("body", "label"), **fields) == "it has no --text_field='text' column"
    assert "2 columns named 'label'" in str(transforms.csv_header_problem(("text", "label", "label"), **fields))
    assert transforms.csv_header_problem(("text", "label"), **{**fields, "id_field": "id"}) == (
        "it has no --id_field='id' column"
    )


@pytest.mark.parametrize(("ratios", "expected"), [((0.8, 0.1, 0.1), 10), ((0.7, 0.15, 0.15), 7), ((1.0, 0.0, 0.0), 1)])
def test_min_records_to_stratify_gives_every_split_one_record(ratios: tuple[float, ...], expected: int) -> None:
    assert transforms.min_records_to_stratify(ratios) == expected


# --- DataFrame steps -------------------------------------------------------------------------------------------------


def test_normalise_derives_the_id_from_the_normalised_text(spark: SparkSession) -> None:
    frame = transforms.normalise(
        _validated_frame(spark, [{"text": " Hello\n world ", "label": " a "}]), derive_ids=True
    )
    row = frame.select("text", "label", "id").first()
    assert row is not None
    assert (row["text"], row["label"]) == ("Hello world", "a")
    assert row["id"] == hashlib.sha256(b"Hello world").hexdigest()


def test_validate_quarantines_label_outside_allowed_set(spark: SparkSession) -> None:
    rows = [{"text": "fine", "label": "a"}, {"text": "odd", "label": "zzz"}]
    result = {r["text"]: r for r in _prepared(spark, rows, allowed_labels=["a", "b"]).collect()}
    assert result["fine"]["reject_reason"] is None
    assert result["odd"]["reject_reason"] == transforms.REASON_LABEL_NOT_ALLOWED
    assert "zzz" in result["odd"]["reject_detail"]


def test_validate_applies_length_bounds_after_normalisation(spark: SparkSession) -> None:
    rows = [{"text": "ab", "label": "a"}, {"text": "a  b  c", "label": "a"}, {"text": "x" * 8, "label": "a"}]
    result = {r["text"]: r for r in _prepared(spark, rows, min_chars=3, max_chars=5).collect()}
    assert result["ab"]["reject_reason"] == transforms.REASON_TEXT_TOO_SHORT
    assert result["a b c"]["reject_reason"] is None
    assert result["x" * 8]["reject_reason"] == transforms.REASON_TEXT_TOO_LONG
    assert result["x" * 8]["reject_detail"] == "the text has 8 characters; max_chars is 5"


def test_validate_keeps_an_earlier_reason_and_flags_missing_fields(spark: SparkSession) -> None:
    rows = [
        {"text": None, "label": "a", "original": "1"},
        {"text": "t", "label": "  ", "original": "2"},
        {"text": "t", "label": "a", "original": "3", "reject_reason": transforms.REASON_MALFORMED},
        {"text": "t", "label": "a", "original": "4"},
    ]
    reasons = {r["original"]: r["reject_reason"] for r in _prepared(spark, rows, derive_ids=False).collect()}
    assert reasons == {
        "1": transforms.REASON_MISSING_TEXT,
        "2": transforms.REASON_MISSING_LABEL,
        "3": transforms.REASON_MALFORMED,
        "4": transforms.REASON_MISSING_ID,
    }


def test_deduplicate_counts_exact_duplicates_and_quarantines_conflicting_labels(spark: SparkSession) -> None:
    rows = [
        {"text": "same", "label": "a", "original": "1"},
        {"text": "same ", "label": "a", "original": "2"},
        {"text": "same", "label": "a", "original": "3"},
        {"text": "clash", "label": "a", "original": "4"},
        {"text": "clash", "label": "b", "original": "5"},
        {"text": "clash", "label": "b", "original": "6"},
        {"text": "alone", "label": "b", "original": "7"},
        {"text": None, "label": "b", "original": "8"},
    ]
    result = transforms.deduplicate(_prepared(spark, rows)).collect()
    by_original = {r["original"]: (r["reject_reason"], r["is_duplicate"]) for r in result}
    assert len(result) == len(rows)
    assert sorted(by_original[key][1] for key in "123") == [False, True, True]
    assert {by_original[key] for key in "456"} == {(transforms.REASON_CONFLICTING_LABELS, False)}
    assert by_original["7"] == (None, False)
    assert by_original["8"] == (transforms.REASON_MISSING_TEXT, False)
    detail = next(r["reject_detail"] for r in result if r["original"] == "4")
    assert detail == 'the same text carries labels ["a","b"]'


def test_deduplicate_quarantines_one_id_used_for_different_texts(spark: SparkSession) -> None:
    rows = [
        {"text": "first", "label": "a", "id": "7", "original": "1"},
        {"text": "second", "label": "a", "id": "7", "original": "2"},
        {"text": "third", "label": "a", "id": "8", "original": "3"},
    ]
    result = transforms.deduplicate(_prepared(spark, rows, derive_ids=False)).collect()
    reasons = {r["original"]: r["reject_reason"] for r in result}
    assert reasons == {"1": transforms.REASON_DUPLICATE_ID, "2": transforms.REASON_DUPLICATE_ID, "3": None}


def _split_counts(frame: DataFrame) -> Counter[tuple[str, str]]:
    return Counter((r["label"], r["split"]) for r in frame.where("split is not null").collect())


def test_assign_splits_stratifies_each_label_exactly(spark: SparkSession) -> None:
    rows = [{"text": f"{label} text {i}", "label": label} for label, n in (("a", 40), ("b", 20)) for i in range(n)]
    split = transforms.assign_splits(transforms.deduplicate(_prepared(spark, rows)), ratios=(0.8, 0.1, 0.1), seed=3)
    counts = _split_counts(split)
    assert counts == Counter(
        {
            ("a", "train"): 32,
            ("a", "validation"): 4,
            ("a", "test"): 4,
            ("b", "train"): 16,
            ("b", "validation"): 2,
            ("b", "test"): 2,
        }
    )


def test_assign_splits_is_deterministic_and_changes_with_the_seed(spark: SparkSession) -> None:
    rows = [{"text": f"text {i}", "label": "a"} for i in range(30)]
    frame = transforms.deduplicate(_prepared(spark, rows))

    def assignment(seed: int, source: DataFrame) -> dict[str, str]:
        result = transforms.assign_splits(source, ratios=(0.6, 0.2, 0.2), seed=seed)
        return {r["text"]: r["split"] for r in result.collect()}

    first = assignment(11, frame)
    assert assignment(11, frame.orderBy("text", ascending=False).repartition(3)) == first
    assert assignment(12, frame) != first


def test_assign_splits_leaves_duplicates_and_rejected_records_out(spark: SparkSession) -> None:
    rows = [{"text": "dup", "label": "a"}, {"text": "dup", "label": "a"}, {"text": "", "label": "a"}]
    split = transforms.assign_splits(transforms.deduplicate(_prepared(spark, rows)), ratios=(0.8, 0.1, 0.1), seed=1)
    assert sorted((r["split"] is None, r["is_duplicate"]) for r in split.collect()) == [
        (False, False),
        (True, False),
        (True, True),
    ]
