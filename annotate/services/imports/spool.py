"""An upload handler that writes a multipart file straight into TANDEM_UPLOAD_DIR, where the worker reads it.

Django's own handlers keep small files in memory and put large ones in a temporary file that is
deleted when the request ends, so handing an upload to a job meant copying it once more. Here the
file is written once, chunk by chunk (the web process never holds more than a chunk), under a random
name; whoever takes it over (a job, or the request itself) removes it when done.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler


class SpooledUpload(UploadedFile):
    """An uploaded file that lives at `path` in the upload directory until someone discards it."""

    def __init__(self, path: Path, name, content_type, charset, content_type_extra):
        super().__init__(path.open("w+b"), name, content_type, 0, charset, content_type_extra)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class UploadDirHandler(FileUploadHandler):
    """Every file of the request to its own file in TANDEM_UPLOAD_DIR (no size threshold, no memory copy)."""

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        directory = Path(settings.TANDEM_UPLOAD_DIR)
        directory.mkdir(parents=True, exist_ok=True)
        self.file = SpooledUpload(
            directory / f"{uuid.uuid4().hex}.upload",
            self.file_name,
            self.content_type,
            self.charset,
            self.content_type_extra,
        )

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.file.write(raw_data)

    def file_complete(self, file_size: int) -> SpooledUpload:
        self.file.flush()
        self.file.seek(0)
        self.file.size = file_size
        return self.file

    def upload_interrupted(self) -> None:
        if hasattr(self, "file"):
            self.file.discard()


def spooled_discard(files) -> None:
    """Remove the request's spooled files that nobody took over (a refused request, a finished import)."""
    for upload in files:
        if isinstance(upload, SpooledUpload):
            upload.discard()
