"""report.html: the report's markdown rendered by markdown-it-py (CommonMark plus tables), as one
self-contained page: each figure is embedded as a PNG data URI, with its title as the caption.

Raw HTML in the markdown is escaped, not passed through.
"""

from __future__ import annotations

import base64
from html import escape

from markdown_it import MarkdownIt

# Wide tables and code scroll inside their own box: no element is wider than the page.
STYLE = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
         "table{border-collapse:collapse;margin:1em 0;font-size:13px;display:block;max-width:100%;overflow-x:auto}"
         "td,th{border:1px solid #ccc;padding:3px 8px}th{background:#f2f2f2}"
         "img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:12px;color:#555}"
         "pre{background:#f7f7f7;padding:1em;font-size:11px;overflow:auto}")


def figure_path(index: int) -> str:
    """Where the report's `index`-th figure (from 0) lies, relative to the experiment folder."""
    return f"figures/figure{index + 1}.png"


def _only_images(inline) -> bool:
    """An inline token holding nothing but images (one per line): a paragraph of figures."""
    children = inline.children or []
    return (inline.type == "inline" and any(c.type == "image" for c in children)
            and all(c.type in ("image", "softbreak") for c in children))


def _paragraph_open(self, tokens, idx, options, env):
    if idx + 1 < len(tokens) and _only_images(tokens[idx + 1]):
        return ""  # figures are blocks of their own, not inside <p>
    return self.renderToken(tokens, idx, options, env)


def _paragraph_close(self, tokens, idx, options, env):
    if idx > 0 and _only_images(tokens[idx - 1]):
        return "\n"
    return self.renderToken(tokens, idx, options, env)


def _image(self, tokens, idx, options, env):
    token = tokens[idx]
    title = self.renderInlineAsText(token.children or [], options, env)
    data = env["figures"].get(token.attrGet("src"))
    if data is None:  # not one of the report's figures: an ordinary image
        token.attrSet("alt", title)
        return self.renderToken(tokens, idx, options, env)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    return (f"<figure><img src=\"{uri}\" alt=\"{escape(title)}\">"
            f"<figcaption>{escape(title)}</figcaption></figure>")


def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("paragraph_open", _paragraph_open)
    md.add_render_rule("paragraph_close", _paragraph_close)
    md.add_render_rule("image", _image)
    return md


def render_html(markdown: str, figures: list[tuple[str, bytes]], name: str) -> str:
    """The page for `markdown`, whose `![title](figures/figureN.png)` lines show `figures[N - 1]` (title, PNG)."""
    images = {figure_path(i): data for i, (_, data) in enumerate(figures)}
    body = _renderer().render(markdown, {"figures": images})
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>synthbridge report: {escape(name)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}</body></html>\n")
