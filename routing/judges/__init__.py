"""LLM judges: prompt templates, output parsing, and what verdicts add up to (pure; no HTTP, no database)."""
