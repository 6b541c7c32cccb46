"""Who labels what: routing policies, instance features, the learned router and LLM judges."""
