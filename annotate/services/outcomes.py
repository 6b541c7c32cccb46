"""What the assignment engine answers besides a lease: refusals and "no work" with the reason why."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class AssignmentError(Exception):
    """A request the engine refuses; `code` is stable for API clients, the message is for people."""

    def __init__(self, message: str, code: str, field: str = "", status: int = 400):
        super().__init__(message)
        self.code = code
        self.field = field
        self.status = status


@dataclass(frozen=True)
class NoWork:
    """Why there is nothing to lease: `done`, `wait` (others hold the rest; retry later), `hold`, or
    `limit` (the annotator reached the campaign's per-person limit; `resets_at` for a daily one)."""

    reason: str
    retry_after: int | None = None
    message: str = ""
    resets_at: datetime | None = None
