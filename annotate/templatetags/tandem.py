"""Template filters: `markdown` is the only way untrusted text reaches a page as HTML."""

from django import template
from django.utils.safestring import mark_safe

from annotate.rendering import markdown_to_safe_html

register = template.Library()


@register.filter(name="markdown")
def markdown(text: str | None):
    return mark_safe(markdown_to_safe_html(text))  # noqa: S308 — sanitized by nh3 in markdown_to_safe_html


@register.filter(name="split")
def split(text: str) -> list[str]:
    """Words of a literal, for loops over a fixed list of names in a template."""
    return str(text).split()
