"""The job kinds of the annotate app, registered with the job runner."""

from __future__ import annotations

from pathlib import Path

from annotate.models import Job
from jobs.registry import JobFailed, job_handler

from .imports import ImportFailed, MappingError, annotations_import, items_import, mapping_parse

IMPORTERS = {"import_items": items_import, "import_annotations": annotations_import}


def _import(job: Job, progress) -> dict:
    path = Path(job.params["path"])
    if not path.exists():
        raise JobFailed(f"the uploaded file {job.params.get('filename', path.name)!r} is gone from {path.parent}")
    importer = IMPORTERS[job.kind]
    options = {"fmt": job.params.get("format") or None}
    if job.params.get("mapping"):  # only item imports take a column mapping
        try:
            options["mapping"] = mapping_parse(job.params["mapping"])
        except MappingError as exc:
            path.unlink(missing_ok=True)
            raise JobFailed(f"column mapping: {exc}") from None
    try:
        with path.open("rb") as stream:
            report = importer(
                campaign=job.campaign,
                stream=stream,
                filename=job.params.get("filename", path.name),
                progress=progress,
                **options,
            )
    except ImportFailed as exc:
        path.unlink(missing_ok=True)
        raise JobFailed(str(exc), result=exc.as_dict()) from exc
    path.unlink(missing_ok=True)
    progress(done=report.rows, total=report.rows)
    return report.as_dict()


for _kind in IMPORTERS:
    job_handler(_kind)(_import)
