"""Fixtures of the permission matrix's world (tests/security/matrix_world.py): built once per module."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test.utils import override_settings


@pytest.fixture(scope="module")
def matrix_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """The world, in a transaction rolled back when the module is done: ~1,500 requests share one build."""
    from tests.security.matrix_world import clients_attach, world_build

    root = tmp_path_factory.mktemp("matrix")
    with (
        override_settings(TANDEM_EXPORT_DIR=root / "exports", TANDEM_UPLOAD_DIR=root / "uploads"),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        world = world_build(export_root=root / "exports")
        clients_attach(world)
        yield world
        transaction.set_rollback(True)
