"""Rows of the permission table (tests/annotate/test_permissions.py) kept beside it, one module per feature.

Each module here defines `PAGE_ROWS` and `API_ROWS` ({URL name: [Row, ...]}) like the table's own; the table
merges every module of this package. `World` is what a row's `args`/`data` callables receive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class World:
    campaign: object
    users: dict
    judge: object
    job: object
    export: object
    item: object
    pool: object
    listed: object  # an annotator added one by one
    invitation: object
    spare: object  # an account with no place yet


@dataclass(frozen=True)
class Row:
    method: str
    need: str
    ok: tuple[int, ...]
    args: Callable[[World], list] = lambda w: []
    data: Callable[[World], dict] = lambda w: {}
    multipart: bool = False
    overrides: dict = field(default_factory=dict)  # role → status, where a route differs on purpose
