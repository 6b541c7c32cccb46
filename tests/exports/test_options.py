"""Export options: each invalid value is refused with the option's name; JSON input and output round-trip."""

from datetime import UTC, datetime

import pytest

from annotate.exports.options import ExportOptions, ExportOptionsError


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"format": "dpo"}, "format"),
        ({"file_type": "xlsx"}, "file_type"),
        ({"source": "crowd"}, "source"),
        ({"ties": "keep"}, "ties"),
        ({"min_agreement": 1.5}, "min_agreement"),
        ({"min_agreement": True}, "min_agreement"),
        ({"min_agreement": float("nan")}, "min_agreement"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": "0.1"}, "test_fraction"),
        ({"metadata": ["domain"]}, "metadata"),
        ({"metadata": {"domain": []}}, "metadata.domain"),
        ({"metadata": {"domain": {"nested": 1}}}, "metadata.domain"),
        ({"created_from": "last tuesday"}, "created_from"),
        ({"created_from": "2025-03-02", "created_to": "2025-03-01"}, "created_to"),
    ],
)
def test_an_invalid_option_is_named(given, field):
    with pytest.raises(ExportOptionsError) as caught:
        ExportOptions(**given)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


def test_from_dict_refuses_unknown_keys_and_round_trips_to_dict():
    with pytest.raises(ExportOptionsError) as caught:
        ExportOptions.from_dict({"format": "trl", "tie": "drop"})
    assert caught.value.field == "tie"
    options = ExportOptions.from_dict(
        {
            "format": "helpsteer2-preference",
            "file_type": "parquet",
            "source": "judge",
            "min_agreement": 0.6,
            "ties": "drop",
            "metadata": {"domain": ["math", "code"], "difficulty": 2},
            "created_from": "2025-03-01",
            "created_to": "2025-03-05T12:00:00+02:00",
            "test_fraction": 0.1,
        }
    )
    assert options.created_from == datetime(2025, 3, 1, tzinfo=UTC)  # naive times are UTC
    assert options.metadata == (("difficulty", (2,)), ("domain", ("math", "code")))
    assert ExportOptions.from_dict(options.to_dict()) == options
    assert hash(options) == hash(ExportOptions.from_dict(options.to_dict()))
    assert ExportOptions().to_dict()["metadata"] == {}


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"aggregation": "mean"}, "aggregation"),
        ({"soft_labels": "yes"}, "soft_labels"),
        ({"soft_labels": 1}, "soft_labels"),
    ],
)
def test_aggregation_and_soft_labels_are_checked(given, field):
    with pytest.raises(ExportOptionsError) as caught:
        ExportOptions(**given)
    assert caught.value.field == field


def test_aggregation_and_soft_labels_need_a_pairwise_winner():
    from annotate import schema as label_schema
    from annotate.exports import export_columns

    schema = label_schema.preset("helpsteer2")
    for given, field in (({"aggregation": "dawid_skene"}, "aggregation"), ({"soft_labels": True}, "soft_labels")):
        for fmt in ("ratings", "raw"):
            with pytest.raises(ExportOptionsError, match="pairwise winner") as caught:
                export_columns(schema=schema, kind="rubric", options=ExportOptions(format=fmt, **given))
            assert caught.value.field == field
    options = ExportOptions(aggregation="dawid_skene", soft_labels=True)
    assert ExportOptions.from_dict(options.to_dict()) == options
    assert ExportOptions.from_dict({"format": "trl"}).aggregation == "majority"  # stored exports predate it
