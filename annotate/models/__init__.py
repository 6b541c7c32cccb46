"""The annotation domain's tables; one module per concept."""

from .annotations import Annotation, AnnotationRevision
from .assignments import Assignment
from .campaigns import Campaign
from .exports import DatasetExport
from .items import Item
from .jobs import Job
from .judges import Judge, JudgeVerdict
from .people import AnnotatorPool, CampaignMember, Invitation
from .routing import RoutingDecision
from .stats import StatsSnapshot

__all__ = [
    "Annotation",
    "AnnotationRevision",
    "AnnotatorPool",
    "Assignment",
    "Campaign",
    "CampaignMember",
    "DatasetExport",
    "Invitation",
    "Item",
    "Job",
    "Judge",
    "JudgeVerdict",
    "RoutingDecision",
    "StatsSnapshot",
]
