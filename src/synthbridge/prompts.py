"""Stage 2 of the flow: prompts. Templates in, one text prompt per (class, image index) out.

A template is a string with placeholders:

    {class}       the class phrase (`DatasetBundle.phrases`, e.g. "Boeing 737-300", "digit 7") -- required
    {superclass}  what all classes are (`DatasetBundle.superclass`, e.g. "aircraft")
    {style}       the token of a learned dataset style (`generate --style`)

Templates are registered by name (`TEMPLATES`, a dict plus a decorator, as in timm) or given as
literals. Several templates are cycled over the image index, so image i of every class uses
template i mod T:

    templates = resolve_templates("mnist5k", ["photo", "a sketch of the {class}"])
    prompt = build_prompt(templates[index % len(templates)], "digit 7", "handwritten digit")
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.registry import Registry

TEMPLATES: Registry[str] = Registry("prompt template")

TEMPLATES.register("study")("a good photo of the {class}")  # the study's default
TEMPLATES.register("photo")("a photo of the {class}")
TEMPLATES.register("superclass")("a photo of a {class}, a type of {superclass}")
TEMPLATES.register("style")("a {class} photo in the style of {style}")  # with a learned style token

PLACEHOLDERS = ("class", "superclass", "style")

# Per-dataset default template name. The embedded digit datasets name their classes "digit 0".."digit 9",
# for which "the study's" "a good photo of the digit 7" reads worse than the plain photo template.
DATASET_TEMPLATES = {"mnist5k": "photo", "digits": "photo"}
DEFAULT_TEMPLATE = "study"

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def default_template(dataset: str) -> str:
    """The name of the template a dataset uses when the user gives none."""
    return DATASET_TEMPLATES.get(dataset, DEFAULT_TEMPLATE)


def resolve_template(text: str) -> str:
    """A registry name or a literal template -> the literal template, checked.

    A word without braces is taken as a registry name (so a typo lists the known names); anything else is a
    literal, which must contain {class} and no placeholder other than {class}, {superclass}, {style}.
    """
    text = text.strip()
    if text in TEMPLATES:
        return TEMPLATES.get(text)
    if "{" not in text and " " not in text:
        TEMPLATES.get(text)  # raises: unknown prompt template ...; choose one of: ...
    unknown = sorted({name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS})
    if unknown:
        raise UserError(f"template {text!r} has unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)}; "
                        f"use {{class}}, {{superclass}} or {{style}}")
    if "{class}" not in text:
        raise UserError(f"template {text!r} has no {{class}}; every prompt must name its class, "
                        f"e.g. 'a photo of the {{class}}'")
    return text


def read_templates_file(path: str | Path) -> list[str]:
    """One template (name or literal) per line; blank lines and lines starting with '#' are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read templates file {str(path)!r} ({exc.strerror}); "
                        f"pass a text file with one template per line") from None
    templates = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    if not templates:
        raise UserError(f"templates file {str(path)!r} has no templates; write one per line, e.g. 'a photo of the {{class}}'")
    return templates


def resolve_templates(dataset: str, templates: Sequence[str] = (), templates_file: str | Path | None = None,
                      style_token: str | None = None, style_template: str | None = None) -> list[str]:
    """The literal templates of a generation run, in cycling order.

    User templates (`--template` first, then `--templates-file`) win; with none, the dataset's default is
    used, or, when a style token is given, `style_template`: the template the token was learned in
    (invert.json records it). A token is only what it learned in the context it learned in: the mini
    generator's token, learned in "a photo of the digit 7, <tok>", drew images far from the real set when
    put in the study's "a digit 7 photo in the style of <tok>". Without a recorded template, the `style`
    template. With a style, every template must place {style}: a template without it would silently drop
    the style from some images. Without a style, {style} has nothing to stand for.
    """
    given = list(templates) + (read_templates_file(templates_file) if templates_file is not None else [])
    if not given:
        given = [(style_template or "style") if style_token else default_template(dataset)]
    resolved = [resolve_template(t) for t in given]
    if style_token:
        if lacking := [t for t in resolved if "{style}" not in t]:
            raise UserError(f"--style needs every template to contain {{style}}, but {lacking[0]!r} does not; "
                            f"add {{style}} or drop --template to use the 'style' template ({TEMPLATES.get('style')!r})")
    elif having := [t for t in resolved if "{style}" in t]:
        raise UserError(f"template {having[0]!r} uses {{style}} but no --style was given; "
                        f"pass --style DIR or drop {{style}}")
    return resolved


def build_prompt(template: str, phrase: str, superclass: str, style_token: str | None = None) -> str:
    """Fill a literal template. Plain replacement rather than str.format: `class` is a Python keyword and
    class phrases may contain braces or other characters that format() would interpret."""
    if "{class}" not in template:
        raise UserError(f"template {template!r} has no {{class}}; e.g. 'a photo of the {{class}}'")
    if "{style}" in template and not style_token:
        raise UserError(f"template {template!r} uses {{style}} but no style token was given")
    text = template.replace("{superclass}", superclass)
    if style_token:
        text = text.replace("{style}", style_token)
    return text.replace("{class}", phrase)


def template_for(templates: Sequence[str], index: int) -> str:
    """Image `index` of every class uses template index mod T (so each template gets ~1/T of each class)."""
    return templates[index % len(templates)]


__all__ = ["DATASET_TEMPLATES", "DEFAULT_TEMPLATE", "PLACEHOLDERS", "TEMPLATES", "build_prompt", "default_template",
           "read_templates_file", "resolve_template", "resolve_templates", "template_for"]
