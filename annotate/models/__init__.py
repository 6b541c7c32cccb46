"""The annotation domain's tables; one module per concept."""

from .annotations import Annotation, AnnotationRevision
from .assignments import Assignment
from .campaigns import Campaign
from .items import Item
from .jobs import Job
from .judges import Judge, JudgeVerdict
from .routing import RoutingDecision
from .stats import StatsSnapshot

__all__ = [
    "Annotation",
    "AnnotationRevision",
    "Assignment",
    "Campaign",
    "Item",
    "Job",
    "Judge",
    "JudgeVerdict",
    "RoutingDecision",
    "StatsSnapshot",
]
