"""Pure transforms of the prepare_dataset Glue job: raw labelled text in, validated and split records out.

Each public function takes a DataFrame (or a SparkSession and input paths, for the readers) and returns a new
DataFrame; nothing here writes, lists or publishes. The entry script ``prepare_dataset.py`` chains them:

    read_csv_records / read_jsonl_records -> normalise -> validate -> deduplicate -> assign_splits

Every input record stays a row all the way through. A rejected record keeps its ``reject_reason`` (one of
``QUARANTINE_REASONS``), a human-readable ``reject_detail`` and its original content (``original`` as text, or
``original_base64`` when its bytes are not valid in the declared encoding), so the job can write it to quarantine and
the report can add up: records in = written + duplicates + quarantined.

Bytes are decoded by Python codecs inside the job, never by Spark's readers, so undecodable bytes are detected and kept
as they were: CSV files are parsed by Spark as ISO-8859-1 (which maps every byte to one character, losslessly) and each
field is re-encoded to its original bytes before strict decoding; JSON Lines files are read as raw line bytes.

This module is shipped next to the entry script (``--extra-py-files`` on Glue, ``SparkContext.addPyFile`` locally) and
imported as the top-level module ``dataset_transforms``: the Python UDFs below are resolved by that name on executors.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

REASON_UNDECODABLE = "undecodable_bytes"
REASON_BLANK_LINE = "blank_line"
REASON_MALFORMED = "malformed_record"
REASON_MISSING_COLUMN = "missing_column"
REASON_INVALID_FIELD_TYPE = "invalid_field_type"
REASON_MISSING_TEXT = "missing_text"
REASON_MISSING_LABEL = "missing_label"
REASON_MISSING_ID = "missing_id"
REASON_TEXT_TOO_SHORT = "text_too_short"
REASON_TEXT_TOO_LONG = "text_too_long"
REASON_LABEL_NOT_ALLOWED = "label_not_allowed"
REASON_CONFLICTING_LABELS = "conflicting_labels"
REASON_DUPLICATE_ID = "duplicate_id"

QUARANTINE_REASONS: tuple[str, ...] = (
    REASON_UNDECODABLE,
    REASON_BLANK_LINE,
    REASON_MALFORMED,
    REASON_MISSING_COLUMN,
    REASON_INVALID_FIELD_TYPE,
    REASON_MISSING_TEXT,
    REASON_MISSING_LABEL,
    REASON_MISSING_ID,
    REASON_TEXT_TOO_SHORT,
    REASON_TEXT_TOO_LONG,
    REASON_LABEL_NOT_ALLOWED,
    REASON_CONFLICTING_LABELS,
    REASON_DUPLICATE_ID,
)

SPLITS: tuple[str, str, str] = ("train", "validation", "test")

# Column written by Spark's CSV reader when a record does not match the header (too many or too few fields).
CORRUPT_RECORD_COLUMN = "_corrupt_record"

# What every reader returns, one row per input record.
PARSED_RECORD_SCHEMA = T.StructType(
    [
        T.StructField("original", T.StringType()),
        T.StructField("original_base64", T.StringType()),
        T.StructField("text_raw", T.StringType()),
        T.StructField("label_raw", T.StringType()),
        T.StructField("id_raw", T.StringType()),
        T.StructField("has_text_field", T.BooleanType()),
        T.StructField("has_label_field", T.BooleanType()),
        T.StructField("has_id_field", T.BooleanType()),
        T.StructField("reject_reason", T.StringType()),
        T.StructField("reject_detail", T.StringType()),
    ]
)

ParsedRecord = tuple[
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    bool | None,
    bool | None,
    bool | None,
    str | None,
    str | None,
]

# Control characters (Unicode category Cc) that Python does not count as whitespace, plus the byte-order mark.
# Whitespace controls (tab, newline, \x1c-\x1f, \x85) are collapsed to one space instead of being removed.
_NON_WHITESPACE_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\ufeff]")


# ---------------------------------------------------------------------------------------------------------------------
# Per-record functions (plain Python, wrapped as UDFs below)
# ---------------------------------------------------------------------------------------------------------------------


def normalise_text(value: str | None) -> str | None:
    """Unicode NFC, control characters removed, every run of whitespace collapsed to one space, ends trimmed.

    Returns None when nothing is left, so empty and whitespace-only texts count as missing.
    """
    if value is None:
        return None
    text = _NON_WHITESPACE_CONTROLS.sub("", unicodedata.normalize("NFC", value))
    collapsed = " ".join(text.split())
    return collapsed or None


def normalise_label(value: str | None) -> str | None:
    """Unicode NFC and trimmed; None when empty."""
    if value is None:
        return None
    label = unicodedata.normalize("NFC", value).strip()
    return label or None


def _rejected(
    reason: str, detail: str, original: str | None = None, original_base64: str | None = None
) -> ParsedRecord:
    return (original, original_base64, None, None, None, None, None, None, reason, detail)


def _undecodable(raw: bytes, encoding: str, error: UnicodeDecodeError) -> ParsedRecord:
    detail = f"byte {raw[error.start : error.start + 1]!r} at offset {error.start} is not valid {encoding}"
    return _rejected(REASON_UNDECODABLE, detail, original_base64=base64.b64encode(raw).decode("ascii"))


def _json_field(record: dict[str, Any], field: str, *, accept_integers: bool) -> tuple[str | None, bool, str | None]:
    """Returns (value as text, field present, type error) for one field of a JSON object."""
    if field not in record:
        return None, False, None
    value = record[field]
    if value is None or isinstance(value, str):
        return value, True, None
    # bool is a subclass of int, and `true` is not a label anyone means.
    if accept_integers and isinstance(value, int) and not isinstance(value, bool):
        return str(value), True, None
    expected = "a string or an integer" if accept_integers else "a string"
    return None, True, f"field {field!r} holds {type(value).__name__} {json.dumps(value)[:80]}; expected {expected}"


def parse_jsonl_line(
    raw: bytes | bytearray | None, encoding: str, text_field: str, label_field: str, id_field: str | None
) -> ParsedRecord:
    """Decodes one JSON Lines record strictly in ``encoding`` and extracts the text, label and id fields.

    Labels and ids may be JSON strings or integers; the text must be a string.
    """
    data = bytes(raw or b"")
    try:
        line = data.decode(encoding)
    except UnicodeDecodeError as error:
        return _undecodable(data, encoding, error)
    # A byte-order mark only ever starts a file, so only the first line of a file can carry one.
    payload = line.lstrip("\ufeff")
    if not payload.strip():
        return _rejected(REASON_BLANK_LINE, "empty or whitespace-only line in a JSON Lines file", original=line)
    try:
        record = json.loads(payload)
    except json.JSONDecodeError as error:
        return _rejected(REASON_MALFORMED, f"invalid JSON: {error.msg} at column {error.colno}", original=line)
    if not isinstance(record, dict):
        detail = f"a JSON Lines record must be an object, got {type(record).__name__}"
        return _rejected(REASON_MALFORMED, detail, original=line)
    text, has_text, text_error = _json_field(record, text_field, accept_integers=False)
    label, has_label, label_error = _json_field(record, label_field, accept_integers=True)
    record_id, has_id, id_error = (
        _json_field(record, id_field, accept_integers=True) if id_field else (None, False, None)
    )
    type_errors = [error for error in (text_error, label_error, id_error) if error]
    if type_errors:
        return (line, None, None, None, None, has_text, has_label, has_id, REASON_INVALID_FIELD_TYPE, type_errors[0])
    return (line, None, text, label, record_id, has_text, has_label, has_id, None, None)


def _csv_line(fields: Sequence[str | None]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["" if field is None else field for field in fields])
    return buffer.getvalue()


def _kept_as_is(reason: str, detail: str, raw: bytes, encoding: str) -> ParsedRecord:
    """A rejected record whose original bytes are kept: as text when they decode in ``encoding``, else as base64."""
    try:
        return _rejected(reason, detail, original=raw.decode(encoding))
    except UnicodeDecodeError:
        return _rejected(reason, detail, original_base64=base64.b64encode(raw).decode("ascii"))


def parse_csv_record(
    fields_latin1: Sequence[str | None],
    corrupt_latin1: str | None,
    encoding: str,
    text_index: int | None,
    label_index: int | None,
    id_index: int | None,
    missing_column: str | None = None,
) -> ParsedRecord:
    """Decodes one CSV record whose fields Spark read as ISO-8859-1 (one character per original byte).

    The indices are the positions of the fields in the header of the record's own file. ``missing_column``, when set,
    says why that header cannot be used (a field it lacks): the record is quarantined with that detail, whatever it
    holds, because reading it by position would put some other column's values in the text or the label.
    ``corrupt_latin1`` is Spark's copy of a record whose field count does not match its file's header. The original
    content is the record written back as one CSV line (fields unchanged, quoting minimal).
    """
    if corrupt_latin1 is not None:
        raw = corrupt_latin1.encode("latin-1")
        if missing_column is not None:
            return _kept_as_is(REASON_MISSING_COLUMN, missing_column, raw, encoding)
        detail = f"the record does not have the {len(fields_latin1)} fields of the CSV header"
        return _kept_as_is(REASON_MALFORMED, detail, raw, encoding)
    raw_line = _csv_line(fields_latin1).encode("latin-1")
    if missing_column is not None or text_index is None or label_index is None:
        return _kept_as_is(REASON_MISSING_COLUMN, missing_column or "the CSV header lacks a field", raw_line, encoding)
    try:
        fields = [None if field is None else field.encode("latin-1").decode(encoding) for field in fields_latin1]
    except UnicodeDecodeError as error:
        return _undecodable(raw_line, encoding, error)
    return (
        _csv_line(fields),
        None,
        fields[text_index],
        fields[label_index],
        None if id_index is None else fields[id_index],
        True,
        True,
        id_index is not None,
        None,
        None,
    )


# ---------------------------------------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------------------------------------


def _with_parsed_columns(df: DataFrame, parsed: Column) -> DataFrame:
    return df.select(
        F.input_file_name().alias("source_file"),
        parsed.alias("parsed"),
    ).select("source_file", "parsed.*")


def read_jsonl_records(
    spark: SparkSession,
    paths: Sequence[str],
    *,
    encoding: str,
    text_field: str,
    label_field: str,
    id_field: str | None,
) -> DataFrame:
    """Reads JSON Lines files as raw line bytes (splittable, compressed files too) and parses each line strictly."""

    @F.udf(returnType=PARSED_RECORD_SCHEMA)
    def parse(raw: bytearray | None) -> ParsedRecord:
        return parse_jsonl_line(raw, encoding, text_field, label_field, id_field)

    # The text source keeps each line's bytes untouched; casting to binary hands them to Python without decoding.
    lines = spark.read.option("recursiveFileLookup", "true").text(list(paths))
    return _with_parsed_columns(lines, parse(F.col("value").cast("binary")))


def parse_csv_header(head: bytes, encoding: str, *, complete: bool) -> tuple[str, ...] | None:
    """The column names of a CSV file from its first bytes ``head``, decoded in ``encoding`` (undecodable bytes
    replaced, a byte-order mark dropped, names trimmed).

    Parsed the way Spark's CSV reader finds the header it drops: the first non-blank record, RFC 4180 quoting.
    ``complete`` says that ``head`` is the whole file. Returns None when ``head`` is cut before the header record ends
    (read more bytes), and ``()`` for a file that holds no record at all.
    """
    text = head.decode("latin-1")
    if not complete:
        # A record is only known to be whole when a line break follows it; the last line may be cut.
        cut = max(text.rfind("\n"), text.rfind("\r"))
        if cut < 0:
            return None
        text = text[: cut + 1]
    try:
        rows = csv.reader(io.StringIO(text, newline=""), strict=True)
        first = next((row for row in rows if any(field.strip() for field in row)), None)
    except csv.Error:
        # strict mode: a quoted field still open where the text ends (cut inside a quoted newline).
        return None if not complete else ()
    if first is None:
        return None if not complete else ()
    names = [name.encode("latin-1").decode(encoding, errors="replace") for name in first]
    names[0] = names[0].lstrip("\ufeff")
    return tuple(name.strip() for name in names)


def csv_header_problem(header: Sequence[str], *, text_field: str, label_field: str, id_field: str | None) -> str | None:
    """Why records cannot be read by ``header`` (a field it lacks, or holds twice), or None when they can."""
    wanted = {"text_field": text_field, "label_field": label_field, "id_field": id_field}
    problems = []
    for name, field in wanted.items():
        if field is None:
            continue
        count = list(header).count(field)
        if count == 0:
            problems.append(f"it has no --{name}={field!r} column")
        elif count > 1:
            problems.append(f"it has {count} columns named {field!r} (--{name}), so which one is meant is unclear")
    return "; ".join(problems) or None


def _csv_reader(spark: SparkSession) -> Any:
    return (
        spark.read.option("header", "true")
        .option("multiLine", "true")
        .option("encoding", "ISO-8859-1")
        .option("quote", '"')
        .option("escape", '"')
        .option("mode", "PERMISSIVE")
        .option("recursiveFileLookup", "true")
    )


def read_csv_records(
    spark: SparkSession,
    files_by_header: Mapping[tuple[str, ...], Sequence[str]],
    *,
    encoding: str,
    text_field: str,
    label_field: str,
    id_field: str | None,
) -> DataFrame:
    """Reads CSV files with a header row (RFC 4180 quoting, quoted newlines, doubled quotes) and parses each record.

    ``files_by_header`` groups the data files by their header (``parse_csv_header``). Each group is read with its own
    header, so columns are found by name in every file whatever their order; records of a file whose header lacks a
    field (``csv_header_problem``) are quarantined as ``missing_column`` with a detail naming the file and its header.
    Spark drops the header record of every file. Blank lines between records are not records and are skipped by the
    CSV parser.
    """
    frames = []
    for header, files in files_by_header.items():
        if not header or not files:
            continue  # files without any record contribute no rows
        problem = csv_header_problem(header, text_field=text_field, label_field=label_field, id_field=id_field)
        indices = (
            (None, None, None)
            if problem
            else (header.index(text_field), header.index(label_field), header.index(id_field) if id_field else None)
        )
        # Positional column names: header names may hold characters Spark cannot use as column names.
        schema = T.StructType(
            [T.StructField(f"c{index}", T.StringType()) for index in range(len(header))]
            + [T.StructField(CORRUPT_RECORD_COLUMN, T.StringType())]
        )
        rows = _csv_reader(spark).option("columnNameOfCorruptRecord", CORRUPT_RECORD_COLUMN).schema(schema).csv(files)
        fields = F.array(*[F.col(f"c{index}") for index in range(len(header))])
        parse = _csv_parser(encoding, indices, header, problem)
        frames.append(_with_parsed_columns(rows, parse(fields, F.col(CORRUPT_RECORD_COLUMN), F.input_file_name())))
    if not frames:
        schema = T.StructType([T.StructField("source_file", T.StringType()), *PARSED_RECORD_SCHEMA.fields])
        return spark.createDataFrame([], schema)
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def _csv_parser(
    encoding: str, indices: tuple[int | None, int | None, int | None], header: Sequence[str], problem: str | None
) -> Any:
    """The parsing UDF of one header group (a function of its own, so each UDF closes over its group's values)."""
    text_index, label_index, id_index = indices

    @F.udf(returnType=PARSED_RECORD_SCHEMA)
    def parse(fields: list[str | None], corrupt: str | None, source_file: str) -> ParsedRecord:
        detail = None
        if problem is not None:
            detail = (
                f"{source_file} has the CSV header {list(header)}: {problem}; every record of the file is "
                "quarantined. Rename the file's columns, or pass the file's column names with --text_field, "
                "--label_field and --id_field"
            )
        return parse_csv_record(fields, corrupt, encoding, text_index, label_index, id_index, detail)

    return parse


# ---------------------------------------------------------------------------------------------------------------------
# Normalise, validate, deduplicate, split
# ---------------------------------------------------------------------------------------------------------------------

_normalise_text_udf = F.udf(normalise_text, T.StringType())
_normalise_label_udf = F.udf(normalise_label, T.StringType())


def normalise(df: DataFrame, *, derive_ids: bool) -> DataFrame:
    """Adds ``text`` and ``label`` (normalised) and ``id``: the trimmed id field, or, with ``derive_ids``, the
    SHA-256 of the normalised text, so the same text always gets the same id."""
    with_text = df.withColumn("text", _normalise_text_udf("text_raw")).withColumn(
        "label", _normalise_label_udf("label_raw")
    )
    if derive_ids:
        record_id = F.when(F.col("text").isNotNull(), F.sha2(F.col("text"), 256))
    else:
        trimmed = F.trim(F.col("id_raw"))
        record_id = F.when(trimmed != "", trimmed)
    return with_text.withColumn("id", record_id)


def validate(
    df: DataFrame,
    *,
    min_chars: int,
    max_chars: int,
    allowed_labels: Sequence[str] | None,
    require_id: bool,
) -> DataFrame:
    """Sets ``reject_reason`` and ``reject_detail`` on the first rule a record breaks; earlier reasons are kept.

    Rules, in order: text present, label present, id present (when ids come from the data), text length in
    [min_chars, max_chars] characters after normalisation, label in ``allowed_labels`` (when given).
    """
    length = F.length("text")
    rules: list[tuple[Column, str, Column]] = [
        (F.col("text").isNull(), REASON_MISSING_TEXT, F.lit("the text is absent or empty after normalisation")),
        (F.col("label").isNull(), REASON_MISSING_LABEL, F.lit("the label is absent or empty")),
    ]
    if require_id:
        rules.append((F.col("id").isNull(), REASON_MISSING_ID, F.lit("the id is absent or empty")))
    rules += [
        (
            length < min_chars,
            REASON_TEXT_TOO_SHORT,
            F.format_string(f"the text has %d characters; min_chars is {min_chars}", length),
        ),
        (
            length > max_chars,
            REASON_TEXT_TOO_LONG,
            F.format_string(f"the text has %d characters; max_chars is {max_chars}", length),
        ),
    ]
    if allowed_labels is not None:
        rules.append(
            (
                ~F.col("label").isin(list(allowed_labels)),
                REASON_LABEL_NOT_ALLOWED,
                F.format_string("label %s is not in --labels", F.to_json(F.array("label"))),
            )
        )
    reason: Column = F.lit(None).cast("string")
    detail: Column = F.lit(None).cast("string")
    for condition, rule_reason, rule_detail in reversed(rules):
        reason = F.when(condition, F.lit(rule_reason)).otherwise(reason)
        detail = F.when(condition, rule_detail).otherwise(detail)
    already_rejected = F.col("reject_reason").isNotNull()
    return df.withColumn(
        "reject_detail", F.when(already_rejected, F.col("reject_detail")).otherwise(detail)
    ).withColumn("reject_reason", F.when(already_rejected, F.col("reject_reason")).otherwise(reason))


def _key_for(eligible: Column, key: Column) -> Column:
    """A window partition key: ``key`` for eligible rows, a key of their own for the others.

    Ineligible rows get a unique key so they neither join a group nor pile up in one giant null-key group; this keeps
    each transform a single pass (no filter-and-union branches that would re-read the input).
    """
    return F.when(eligible, F.concat(F.lit("k"), key)).otherwise(
        F.concat(F.lit("row-"), F.monotonically_increasing_id().cast("string"))
    )


def deduplicate(df: DataFrame) -> DataFrame:
    """Adds ``is_duplicate`` and quarantines ambiguous records among the valid ones.

    - Same normalised text, different labels: every copy is quarantined as ``conflicting_labels`` (no copy wins by
      chance).
    - Same text and label: the copy with the smallest id (then source file, then original) is kept; the others are
      duplicates, counted in the report and not written.
    - Same id, different texts (ids given by the data): every record with that id is quarantined as ``duplicate_id``.
    """
    valid = F.col("reject_reason").isNull()
    # Keys are materialised as columns so that every window over them shares one shuffle.
    df = df.withColumn("_text_key", _key_for(valid, F.col("text")))
    by_text = Window.partitionBy("_text_key")
    conflicting = valid & (F.min("label").over(by_text) != F.max("label").over(by_text))
    rank = F.row_number().over(by_text.orderBy("id", "source_file", "original"))
    labels_of_text = F.to_json(F.array_sort(F.collect_set("label").over(by_text)))
    marked = (
        df.withColumn("_conflicting", conflicting)
        .withColumn("is_duplicate", valid & ~F.col("_conflicting") & (rank > 1))
        .withColumn(
            "reject_detail",
            F.when(F.col("_conflicting"), F.format_string("the same text carries labels %s", labels_of_text)).otherwise(
                F.col("reject_detail")
            ),
        )
        .withColumn(
            "reject_reason",
            F.when(F.col("_conflicting"), F.lit(REASON_CONFLICTING_LABELS)).otherwise(F.col("reject_reason")),
        )
        .drop("_conflicting", "_text_key")
    )
    kept = F.col("reject_reason").isNull() & ~F.col("is_duplicate")
    marked = marked.withColumn("_id_key", _key_for(kept, F.col("id")))
    by_id = Window.partitionBy("_id_key")
    clash = kept & (F.min("text").over(by_id) != F.max("text").over(by_id))
    return (
        marked.withColumn("_clash", clash)
        .withColumn(
            "reject_detail",
            F.when(
                F.col("_clash"), F.format_string("id %s is used by records with different texts", F.col("id"))
            ).otherwise(F.col("reject_detail")),
        )
        .withColumn(
            "reject_reason", F.when(F.col("_clash"), F.lit(REASON_DUPLICATE_ID)).otherwise(F.col("reject_reason"))
        )
        .drop("_clash", "_id_key")
    )


def _split_thresholds(ratios: Sequence[float]) -> tuple[float, float]:
    train, validation, _ = ratios
    return train, train + validation


def split_from_position(position: Column, ratios: Sequence[float]) -> Column:
    """Maps a position in [0, 1) to a split name with cumulative ratio thresholds."""
    first, second = _split_thresholds(ratios)
    return (
        F.when(position < first, F.lit(SPLITS[0])).when(position < second, F.lit(SPLITS[1])).otherwise(F.lit(SPLITS[2]))
    )


def min_records_to_stratify(ratios: Sequence[float]) -> int:
    """The smallest label size for which every split with a non-zero ratio gets at least one record."""
    smallest = min(ratio for ratio in ratios if ratio > 0)
    # Rounding guards against 1 / 0.1 == 9.999999999999998.
    return max(1, int(-(-round(1 / smallest, 9) // 1)))


def assign_splits(df: DataFrame, *, ratios: Sequence[float], seed: int) -> DataFrame:
    """Adds ``split`` (train, validation or test) to kept records; null for duplicates and rejected records.

    Each record gets a position u in [0, 1) from a 64-bit hash of the seed and its id, so the split depends only on
    the data and the seed. Labels with at least ``min_records_to_stratify(ratios)`` records are stratified exactly:
    records are ranked by u within their label and cut at the ratios, so every split gets its share of each label.
    Smaller labels cannot be shared out that way and are split by u directly. Deduplication already left each text
    once, so no text can land in two splits.
    """
    kept = F.col("reject_reason").isNull() & ~F.col("is_duplicate")
    # xxhash64 is signed; shifting away the sign bit leaves 63 uniform bits.
    hashed = F.shiftrightunsigned(F.xxhash64(F.lit(str(seed)), F.col("id")), 1)
    position = hashed.cast("double") / float(2**63)
    by_label = Window.partitionBy("_label_key")
    records = (
        df.withColumn("_label_key", _key_for(kept, F.col("label")))
        .withColumn("_u", position)
        .withColumn("_n", F.count(F.lit(1)).over(by_label))
        .withColumn("_rank", F.row_number().over(by_label.orderBy("_u", "id")))
    )
    stratified_position = (F.col("_rank") - 0.5) / F.col("_n")
    chosen = F.when(F.col("_n") >= min_records_to_stratify(ratios), stratified_position).otherwise(F.col("_u"))
    return records.withColumn("split", F.when(kept, split_from_position(chosen, ratios))).drop(
        "_label_key", "_u", "_n", "_rank"
    )


def outcome() -> Column:
    """``written``, ``duplicate`` or ``quarantined`` for each row of ``assign_splits``'s result."""
    return (
        F.when(F.col("reject_reason").isNotNull(), F.lit("quarantined"))
        .when(F.col("is_duplicate"), F.lit("duplicate"))
        .otherwise(F.lit("written"))
    )


def quarantine_records(df: DataFrame) -> DataFrame:
    """The quarantine view: one row per rejected record with its reason, detail, source file and original content."""
    return df.where(F.col("reject_reason").isNotNull()).select(
        F.col("reject_reason").alias("reason"),
        F.col("reject_detail").alias("detail"),
        "source_file",
        "original",
        "original_base64",
    )


def split_records(df: DataFrame, split: str) -> DataFrame:
    """The records of one split as ``{"id", "text", "label"}``, sorted by id within each output file."""
    return df.where(F.col("split") == split).select("id", "text", "label").sortWithinPartitions("id")
