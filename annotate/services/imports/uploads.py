"""Files waiting in the import wizard: stored under TANDEM_UPLOAD_DIR with a random name, found by token.

The browser only ever holds the token. Each upload has a small JSON note beside it saying whose it
is (campaign and user) and what it was called, so a token is useless to anyone else, and a path
never comes from the client.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from annotate.models import Campaign

WIZARD_DIR = "wizard"
KEEP_SECONDS = 24 * 3600  # an upload nobody came back to is removed after this long
TOKEN = re.compile(r"^[0-9a-f]{32}$")


class UploadMissing(LookupError):
    """No upload by that token for this campaign and user (never made, someone else's, or cleaned up)."""


class UploadTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Upload:
    token: str
    path: Path
    filename: str
    size: int
    campaign_id: int
    user_id: int

    @property
    def note(self) -> Path:
        return self.path.with_suffix(".json")


def _root() -> Path:
    root = Path(settings.TANDEM_UPLOAD_DIR) / WIZARD_DIR
    root.mkdir(parents=True, exist_ok=True)
    return root


def upload_store(*, campaign: Campaign, user, filename: str, chunks: Iterable[bytes], max_bytes: int) -> Upload:
    """Write the chunks to a new random file; UploadTooLarge (and nothing kept) past `max_bytes`."""
    uploads_sweep()
    token = secrets.token_hex(16)
    path = _root() / f"{token}.upload"
    size = 0
    try:
        with path.open("xb") as out:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise UploadTooLarge(f"the file is over the size limit of {max_bytes:,} bytes")
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    upload = Upload(token, path, Path(filename).name or "upload", size, campaign.pk, user.pk)
    note = {"filename": upload.filename, "size": size, "campaign": campaign.pk, "user": user.pk}
    upload.note.write_text(json.dumps(note), encoding="utf-8")
    return upload


def upload_get(*, token: str, campaign: Campaign, user) -> Upload:
    if not TOKEN.match(token or ""):
        raise UploadMissing(token)
    path = _root() / f"{token}.upload"
    try:
        note = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UploadMissing(token) from None
    if note.get("campaign") != campaign.pk or note.get("user") != user.pk or not path.exists():
        raise UploadMissing(token)
    return Upload(token, path, note["filename"], note["size"], campaign.pk, user.pk)


def upload_discard(*, upload: Upload) -> None:
    upload.path.unlink(missing_ok=True)
    upload.note.unlink(missing_ok=True)


def upload_discard_token(*, token: str) -> None:
    """Clean up after a background import: the job removes the file, this removes the note."""
    if TOKEN.match(token or ""):
        root = _root()
        (root / f"{token}.upload").unlink(missing_ok=True)
        (root / f"{token}.json").unlink(missing_ok=True)


def uploads_sweep(*, keep_seconds: int = KEEP_SECONDS) -> int:
    """Remove wizard uploads older than `keep_seconds`; returns how many files went."""
    cutoff = time.time() - keep_seconds
    removed = 0
    for path in _root().iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
