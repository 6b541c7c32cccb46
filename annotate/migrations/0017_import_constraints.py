"""Cheaper bulk imports: no per-row foreign-key triggers on items and their routing decisions, no
redundant index on decisions, and item ids compared as bytes on PostgreSQL (see Item.campaign and
Item.external_id for why)."""

import django.db.models.deletion
from django.db import migrations, models

ITEM_ID_COLLATION = 'ALTER TABLE annotate_item ALTER COLUMN external_id TYPE varchar(200) COLLATE "{}"'


def external_id_bytewise(apps, schema_editor):
    # SQLite already compares text as bytes (BINARY); PostgreSQL's database default follows the locale.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ITEM_ID_COLLATION.format("C"))


def external_id_default(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ITEM_ID_COLLATION.format("default"))


class Migration(migrations.Migration):
    dependencies = [
        ("annotate", "0016_api_tokens"),
    ]

    operations = [
        migrations.AlterField(
            model_name="item",
            name="campaign",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="items",
                to="annotate.campaign",
            ),
        ),
        migrations.AlterField(
            model_name="routingdecision",
            name="campaign",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="routing_decisions",
                to="annotate.campaign",
            ),
        ),
        migrations.AlterField(
            model_name="routingdecision",
            name="item",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="routing_decisions",
                to="annotate.item",
            ),
        ),
        migrations.RunPython(external_id_bytewise, external_id_default, elidable=False),
    ]
