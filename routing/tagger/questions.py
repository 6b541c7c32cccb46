"""The tagger's six questions about a prompt (after HyPER) and the tags their answers become (`ItemTags.tags`).

- ``subject``: the subject of expertise the prompt needs most, one of `SUBJECTS` (the last is "other");
- ``expertise_level``: 1 (anyone can judge an answer) to 5 (only a specialist can);
- ``open_endedness``: 1 (one correct answer) to 5 (many equally good answers);
- ``safety_concern``: 1 (none) to 5 (an answer could do serious harm);
- ``complexity_of_intents``: 1 (one simple request) to 5 (many intertwined requests and constraints);
- ``format_constraints``: how many explicit constraints on the answer's form the prompt sets, 0 to 10.

Plain constants, so that the features (`routing.features`) and the synthetic data read them without the
prompt machinery.
"""

SUBJECTS = (
    "computer science",
    "mathematics",
    "natural sciences",
    "medicine and health",
    "law",
    "business and finance",
    "social sciences",
    "humanities",
    "arts and creative writing",
    "everyday life",
    "other",
)
# The ordinal answers and their ranges (inclusive).
LEVELS = {
    "expertise_level": (1, 5),
    "open_endedness": (1, 5),
    "safety_concern": (1, 5),
    "complexity_of_intents": (1, 5),
    "format_constraints": (0, 10),
}
TAG_KEYS = ("subject", *LEVELS)
