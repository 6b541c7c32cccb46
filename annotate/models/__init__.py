"""The annotation domain's tables; one module per concept."""

from .annotations import Annotation, AnnotationRevision
from .assignments import Assignment
from .campaigns import Campaign
from .exports import DatasetExport
from .items import Item
from .jobs import Job
from .judges import Judge, JudgeVerdict
from .people import AnnotatorPool, CampaignMember, Invitation
from .quality import Adjudication, AnnotatorStanding, ItemFlag
from .routing import ItemEmbedding, ItemTags, RoutingDecision
from .stats import StatsSnapshot
from .tokens import ApiToken

__all__ = [
    "Adjudication",
    "Annotation",
    "AnnotationRevision",
    "AnnotatorPool",
    "AnnotatorStanding",
    "ApiToken",
    "Assignment",
    "Campaign",
    "CampaignMember",
    "DatasetExport",
    "Invitation",
    "Item",
    "ItemEmbedding",
    "ItemFlag",
    "ItemTags",
    "Job",
    "Judge",
    "JudgeVerdict",
    "RoutingDecision",
    "StatsSnapshot",
]
