"""Fakes of external services at their protocol boundary, for tests."""

from .openai_server import FakeOpenAIServer, FakeReply, Fault, FaultPlan, default_answer, key_for

__all__ = ["FakeOpenAIServer", "FakeReply", "Fault", "FaultPlan", "default_answer", "key_for"]
