"""HyPER-style prompt tags: an LLM asked about each item's prompt, its answers cached per item and prompt version.

`questions` holds the questions and their ranges and `prompt` the versioned prompt and the parser (both pure);
`cache` the reads of the cache (`cached_tags`, the counts); `runs` the `tag_items` job and `tagging_start`;
`api` the API view.
"""
