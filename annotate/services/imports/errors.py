"""Import errors that say what is wrong and where: file, line (or row) and field."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    file: str
    where: str  # "line 3", "row 17" (Parquet), or "" for the whole file
    field: str  # "" when the problem is not one field
    message: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.where:
            parts.append(self.where)
        if self.field:
            parts.append(f"field '{self.field}'")
        return f"{', '.join(parts)}: {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "where": self.where, "field": self.field, "message": self.message}


class ImportFailed(Exception):
    """Nothing was imported; `errors` lists the first problems found (at most MAX_ERRORS)."""

    MAX_ERRORS = 50

    def __init__(self, errors: list[RowError]):
        self.errors = errors
        head = str(errors[0]) if errors else "import failed"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{head}{more}; nothing was imported")

    def as_dict(self) -> dict:
        return {"detail": str(self), "errors": [e.as_dict() for e in self.errors], "imported": 0}


class RowProblem(ValueError):
    """Raised inside row handling; the caller adds file and line."""

    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


class ReaderError(ValueError):
    """A row (or the whole file, when `fatal`) a reader could not decode, with where it is."""

    def __init__(self, where: str, message: str, field: str = "", fatal: bool = False):
        super().__init__(message)
        self.where = where
        self.field = field
        self.fatal = fatal  # True when reading cannot go on past this point


def row_too_big(where: str, size: int, limit: int) -> ReaderError:
    return ReaderError(
        where,
        f"row is over the size limit of {limit:,} bytes (TANDEM_IMPORT_MAX_ROW_BYTES)"
        + (f": {size:,} bytes" if size else ""),
    )
