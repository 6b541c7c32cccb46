"""Model instances from hand-written SQL, and one-row inserts, without the ORM's per-query setup.

`Model.objects.raw()` works out, on every query, which column is which field and each column's
converters; the insert compiler rebuilds its statement for every save. On the annotator's next and
submit (and the token lookup) that setup cost more than the queries themselves, so it is worked out
once per connection, model and column list and kept on the connection.
"""

from __future__ import annotations

from django.core.exceptions import FieldDoesNotExist
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import signals


def _plans(db) -> dict:
    """This connection's worked-out statements, `(model, columns)` -> plan: kept on the connection itself,
    as the converters in them are its bound methods (and each thread has its own connection)."""
    plans = db.__dict__.get("tandem_row_plans")
    if plans is None:
        plans = db.__dict__["tandem_row_plans"] = {}
    return plans


def instances_from_sql(model, sql: str, params) -> list:
    """`list(model.objects.raw(sql, params))`, without RawQuerySet's setup on every query.

    The same instances: columns that are the model's fields go through the ORM's converters (SQLite returns
    datetimes as text, booleans as 0/1), the others are set as attributes as they come, and parameters are
    adapted as RawQuerySet adapts them. What RawQuerySet works out per query (which column is which field,
    each column's converters) is worked out once per connection, model and column list: on the lease and
    submit paths it cost more than the queries themselves.
    """
    db = connections[DEFAULT_DB_ALIAS]  # the thread's own connection: the converters are bound to it
    adapt = db.ops.adapt_unknown_value
    if isinstance(params, dict):
        params = {key: adapt(value) for key, value in params.items()}
    else:
        params = [adapt(value) for value in params]
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if not rows:
            return []
        columns = tuple(column[0] for column in cursor.description)
    plans = _plans(db)
    plan = plans.get((model, columns))
    if plan is None:
        plan = plans[(model, columns)] = _row_plan(db, model, columns)
    names, positions, converters, extras = plan
    instances = []
    for row in rows:
        values = converted_row(row, converters, db)
        instance = model.from_db(db.alias, names, [values[p] for p in positions])
        for column, position in extras:
            setattr(instance, column, values[position])
        instances.append(instance)
    return instances


def converted_row(row, converters, db) -> list:
    """A fetched row with each field column through the ORM's converters: `converters` is
    [(position, functions, expression)], as `_row_plan` works them out."""
    values = list(row)
    for position, functions, expression in converters:
        value = values[position]
        for function in functions:
            value = function(value, expression, db)
        values[position] = value
    return values


def instance_insert(instance) -> None:
    """`instance.save(force_insert=True)` for a new row with an automatic primary key, as one INSERT …
    RETURNING whose statement is built once per connection and model: the ORM's insert compiler cost more
    than the statement on every lease and every label (a model with save receivers gets the ORM's save).
    Each field's value is what the ORM would write (`pre_save`, so `auto_now_add` stamps the instance, then
    `get_db_prep_save`)."""
    model = type(instance)
    if signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model):
        instance.save(force_insert=True)  # someone listens: the ORM's save, so no receiver is skipped
        return
    db = connections[DEFAULT_DB_ALIAS]
    plans = _plans(db)
    plan = plans.get((model, None))
    if plan is None:
        meta = model._meta
        fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
        columns = ", ".join(db.ops.quote_name(f.column) for f in fields)
        sql = f"INSERT INTO {db.ops.quote_name(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        returning = db.features.can_return_columns_from_insert
        if returning:
            sql += f" RETURNING {db.ops.quote_name(meta.pk.column)}"
        plan = plans[(model, None)] = (sql, fields, returning)
    sql, fields, returning = plan
    values = [f.get_db_prep_save(f.pre_save(instance, True), db) for f in fields]
    with db.cursor() as cursor:
        cursor.execute(sql, values)
        if returning:
            pk = cursor.fetchone()[0]
        else:
            pk = db.ops.last_insert_id(cursor, model._meta.db_table, model._meta.pk.column)
    instance.pk = pk
    instance._state.adding, instance._state.db = False, db.alias


def _row_plan(db, model, columns: tuple[str, ...]) -> tuple:
    """What RawModelIterable works out per query: the model's fields among `columns` (in the model's order)
    and where they are, each field column's converters, and the other columns (set as attributes)."""
    to_name = db.introspection.identifier_converter
    columns = tuple(to_name(column) for column in columns)
    by_column = {to_name(f.column): f for f in model._meta.fields}
    if to_name(model._meta.pk.column) not in columns:
        raise FieldDoesNotExist("Raw query must include the primary key")
    fields = [f for f in model._meta.fields if to_name(f.column) in columns]
    positions = [columns.index(to_name(f.column)) for f in fields]
    converters = []
    for position, column in enumerate(columns):
        field = by_column.get(column)
        if field is None:
            continue
        expression = field.get_col(model._meta.db_table)
        functions = db.ops.get_db_converters(expression) + expression.get_db_converters(db)
        if functions:
            converters.append((position, functions, expression))
    extras = [(column, position) for position, column in enumerate(columns) if column not in by_column]
    return [f.attname for f in fields], positions, converters, extras
