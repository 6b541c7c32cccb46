"""The one place untrusted text (prompts, LLM responses, justifications, guidelines) becomes HTML.

Markdown is parsed with raw HTML disabled, so `<script>` in a response is shown as text; code
blocks are highlighted with Pygments; the result is then sanitized by nh3 (Ammonia) with a small
allow-list, as a second line of defence. No images: an LLM response must not make an annotator's
browser fetch a URL of its choosing, so an image is shown as its alt text. Links keep only absolute
http(s) and mailto targets: a relative link in a response would point into Tandem itself.
"""

from __future__ import annotations

from html import escape

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "del", "ins", "code",
    "pre", "kbd", "samp", "blockquote", "ul", "ol", "li", "dl", "dt", "dd", "table", "thead", "tbody", "tr", "th",
    "td", "a", "span", "div", "sub", "sup",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "pre": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
_FORMATTER = HtmlFormatter(nowrap=True)
LINK_SCHEMES = ("http://", "https://", "mailto:")


def _highlight(code: str, lang: str, _attrs) -> str:
    if not lang:
        return ""  # markdown-it escapes the code itself
    try:
        lexer = get_lexer_by_name(lang.split()[0])
    except ClassNotFound:
        return ""
    return highlight(code, lexer, _FORMATTER)


def _image_as_text(_renderer, tokens, idx, _options, _env) -> str:
    return escape(tokens[idx].content)


def _keep_link(_element: str, attribute: str, value: str) -> str | None:
    if attribute == "href" and not value.strip().lower().startswith(LINK_SCHEMES):
        return None
    return value


_MD = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False, "highlight": _highlight})
_MD.enable("table").enable("strikethrough")
_MD.add_render_rule("image", _image_as_text)


def markdown_to_safe_html(text: str | None) -> str:
    """Render Markdown to HTML that is safe to insert into a page."""
    if not text:
        return ""
    html = _MD.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        attribute_filter=_keep_link,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def pygments_css() -> str:
    return HtmlFormatter(style="default").get_style_defs(".highlight, pre code")
