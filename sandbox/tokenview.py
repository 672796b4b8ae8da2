"""HTML views of generated text and of a prompt's tokens, safe for model output.

Model output and prompts are untrusted text: every piece of it goes through `html.escape`
(quotes included, since pieces also land in ``title`` attributes) before it is put in markup.
The functions return self-contained HTML strings (inline styles, no scripts) for `st.html`.
Nothing here imports Streamlit.
"""

from __future__ import annotations

import re
from html import escape

# Wrapping container: keeps newlines and spaces as the model wrote them.
_BOX = (
    "white-space:pre-wrap;word-break:break-word;line-height:1.9;"
    "font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:0.9rem"
)
_TOKEN = "color:#111;border-radius:3px;padding:1px 0;box-shadow:inset -1px 0 0 rgba(0,0,0,.35)"
LEGEND_STEPS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def prob_color(p: float) -> str:
    """Background for a token chosen with probability ``p``: red (unlikely) to green (likely).

    The hue follows sqrt(p) so that the low range, where surprises live, gets more of the scale.
    """
    p = min(1.0, max(0.0, float(p)))
    hue = round(120 * p**0.5)
    return f"hsl({hue}, 75%, 80%)"


def visible_piece(piece: str, label: str | None = None) -> str:
    """How a token's text is shown: specials by name, empty and whitespace-only made visible."""
    if label is not None:
        return label
    if piece == "":
        return "∅"
    # A newline stays a line break but gets a visible mark, so the token boundary shows.
    return piece.replace("\n", "↵\n")


def _alt_line(rank: int, piece: str, prob: float) -> str:
    return f"{rank}. {piece!r}  {prob:.1%}"


def token_title(event: dict, specials: dict[int, str] | None = None) -> str:
    """The hover text of one generated token: its probability and the top alternatives."""
    specials = specials or {}
    name = specials.get(int(event["id"]), repr(event.get("piece", "")))
    lines = [f"{name}  id {event['id']}  p = {event['prob']:.1%}", "alternatives:"]
    lines += [
        _alt_line(rank, specials.get(int(i), piece), prob)
        for rank, (i, piece, prob) in enumerate(event.get("alts", []), start=1)
    ]
    return "\n".join(lines)


PROMPT_TAIL = 200  # characters of the prompt shown, dimmed, before a continuation
PROMPT_STYLE = "opacity:.5"


def _prompt_span(prompt: str) -> str:
    """The end of the prompt, dimmed, so that a continuation reads on from it."""
    if not prompt:
        return ""
    tail = prompt if len(prompt) <= PROMPT_TAIL else "…" + prompt[-PROMPT_TAIL:]
    return f'<span style="{PROMPT_STYLE}">{escape(tail)}</span>'


def plain_html(text: str, prompt: str = "") -> str:
    """Generated text as escaped, whitespace-preserving HTML (never empty, for `st.html`).

    With ``prompt``, its end is shown dimmed before the text.
    """
    return f'<div style="{_BOX}">{_prompt_span(prompt)}{escape(text) or "&nbsp;"}</div>'


def tokens_html(tokens: list[dict], specials: dict[int, str] | None = None, prompt: str = "") -> str:
    """Generated tokens as spans coloured by their probability; hover shows the alternatives.

    ``tokens`` are token events of `sandbox.generation.generate` (``id``, ``piece``,
    ``prob``, ``alts``); ``specials`` maps ids such as eos to a label like ``⟨eos⟩``; the
    end of ``prompt``, if given, is shown dimmed first.
    """
    specials = specials or {}
    spans = []
    for event in tokens:
        label = specials.get(int(event["id"]))
        shown = escape(visible_piece(event.get("piece", ""), label), quote=True)
        title = escape(token_title(event, specials), quote=True)
        spans.append(f'<span style="background:{prob_color(event["prob"])};{_TOKEN}" title="{title}">{shown}</span>')
    return f'<div style="{_BOX}">{_prompt_span(prompt)}{"".join(spans) or "&nbsp;"}</div>'


def legend_html() -> str:
    """A legend of the probability colours used by `tokens_html`."""
    cells = "".join(
        f'<span style="background:{prob_color(p)};{_TOKEN};padding:1px 6px;margin-right:4px">{p:.0%}</span>'
        for p in LEGEND_STEPS
    )
    return (
        '<div style="font-size:0.8rem">Probability of the chosen token (model at temperature 1): '
        f"{cells} Hover a token for the top alternatives.</div>"
    )


def prompt_tokens_html(ids: list[int], pieces: list[str], specials: dict[int, str] | None = None) -> str:
    """A prompt split into its tokens: alternating shades, each with its id underneath."""
    specials = specials or {}
    cells = []
    for n, (token_id, piece) in enumerate(zip(ids, pieces, strict=True)):
        shade = "#dbeafe" if n % 2 == 0 else "#fde68a"
        shown = escape(visible_piece(piece, specials.get(int(token_id))), quote=True)
        title = escape(f"token {n}: id {token_id}, {piece!r}", quote=True)
        cells.append(
            f'<span style="display:inline-flex;flex-direction:column;align-items:center;margin:0 4px 4px 0">'
            f'<span style="background:{shade};{_TOKEN}" title="{title}">{shown}</span>'
            f'<span style="font-size:0.65rem;opacity:.7;padding:0 1px">{int(token_id)}</span></span>'
        )
    return f'<div style="{_BOX}">{"".join(cells) or "&nbsp;"}</div>'


def marked_text_html(text: str, bad_chars: list[str]) -> str:
    """``text`` with every character in ``bad_chars`` highlighted (what the tokenizer loses)."""
    bad = set(bad_chars)
    out = []
    for ch in text:
        if ch in bad:
            title = escape(f"U+{ord(ch):04X} cannot be represented by this tokenizer", quote=True)
            out.append(f'<mark style="background:#fca5a5;color:#111" title="{title}">{escape(ch)}</mark>')
        else:
            out.append(escape(ch))
    return f'<div style="{_BOX}">{"".join(out) or "&nbsp;"}</div>'


# What makes Markdown (CommonMark + GFM + Streamlit's extensions) out of plain text:
# anywhere in a line (code, emphasis, links and images, raw HTML and autolinks, entities,
# strikethrough, tables, math) ...
_INLINE_SPECIAL = re.compile(r"([\\`*\[\]<>&~|$])")
# ... a colon right before a word (Streamlit's :material/icon: and :emoji: shortcodes,
# http: of a bare link) ...
_COLON_WORD = re.compile(r":(?=[A-Za-z/])")
# ... and, at the start of a line, headings, lists, quotes, rules and setext underlines.
_LINE_START = re.compile(r"^([ \t]*)([#+=-]|\d+(?=[.)]))", re.MULTILINE)
# GFM turns bare URLs and e-mail addresses into links after escapes are resolved, so they are
# broken with an invisible WORD JOINER instead: "http⁠://", "www⁠.", "name⁠@host".
_AUTOLINK = re.compile(r"(?i)(?<![A-Za-z])(https?|ftp|www)(?=\\?[:.])|(?<=[\w.+-])(?=@[\w-])")
WORD_JOINER = "\u2060"


def md_escape(text: str) -> str:
    """``text`` shown as itself by an element that renders Markdown (``st.warning``,
    ``st.caption``, ``st.markdown``, expander labels...): the one escape for untrusted text.

    Every character that could start Markdown, HTML or a Streamlit directive is
    backslash-escaped, and only those: ordinary sentences ("model_config.json is missing
    (line 3).") pass unchanged, a quoted ``$``, ``*`` or ``![p](http://host/a)`` shows as
    typed and never becomes math, emphasis or an image the browser would fetch. Bare URLs
    and e-mail addresses get an invisible WORD JOINER, so GFM does not make links of them.
    """
    text = _INLINE_SPECIAL.sub(r"\\\1", text)
    text = re.sub(r"_", lambda m: "_" if _intraword(m.string, m.start()) else "\\_", text)
    text = _COLON_WORD.sub(r"\\:", text)
    text = _AUTOLINK.sub(lambda m: (m.group(1) or "") + WORD_JOINER, text)
    return _LINE_START.sub(lambda m: _line_start(m.group(1), m.group(2)), text)


def _intraword(text: str, i: int) -> bool:
    """An underscore between two letters or digits, which never starts or ends emphasis."""
    return 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()


def _line_start(indent: str, marker: str) -> str:
    if marker.isdigit():  # "1." / "1)": an ordered list item; escape its dot or parenthesis
        return indent + marker + "\\"
    return indent + "\\" + marker


# README markdown: images that would make every visitor's browser fetch a URL, and raw HTML.
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_MD_IMAGE = re.compile(r"!\[((?:[^\[\]\\]|\\.)*)\]\s*(\([^)]*\)|\[[^\]]*\])?")
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_IMG_ALT = re.compile(r"""\balt\s*=\s*(["'])(.*?)\1""", re.IGNORECASE | re.DOTALL)
_HTML = re.compile(r"<!--.*?(?:-->|\Z)|</?[A-Za-z][^>]*>", re.DOTALL)


def safe_readme(markdown: str) -> str:
    """An experiment's README made safe to render with ``st.markdown``: no image is loaded
    and no raw HTML is kept.

    READMEs are the one kind of file text shown as Markdown (headings, lists, links, code
    stay). Outside fenced code blocks, every image (``![alt](url)``, ``![alt][ref]``,
    ``<img>``) becomes "(image: alt)", raw HTML tags and comments are dropped, and any
    ``![`` left over is escaped, so no image syntax survives however it is nested. Fenced
    code blocks at the top level are kept as written: Markdown shows them as text.
    """
    return "".join(text if code else _safe_prose(text) for text, code in _fenced_blocks(markdown))


def _fenced_blocks(markdown: str) -> list[tuple[str, bool]]:
    """``markdown`` cut into (text, is a fenced code block) pieces, by CommonMark's fence rules.

    Only what is surely a fence counts as code (a top-level opening line, closed by a line
    of at least as many of the same character); anything else is sanitized as prose.
    """
    pieces: list[tuple[str, bool]] = []
    block: list[str] = []
    fence = None
    for line in markdown.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if fence is None:
            opening = _FENCE_OPEN.fullmatch(bare)
            if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
                pieces.append(("".join(block), False))
                block, fence = [line], opening.group(1)
            else:
                block.append(line)
            continue
        block.append(line)
        if re.fullmatch(rf" {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*", bare):
            pieces.append(("".join(block), True))
            block, fence = [], None
    pieces.append(("".join(block), fence is not None))
    return pieces


def _safe_prose(text: str) -> str:
    def image(alt: str) -> str:
        alt = " ".join(alt.split())
        return f"(image: {md_escape(alt)})" if alt else "(image)"

    previous = None
    while previous != text:  # nested images: the inner one first, then the outer one
        previous = text
        text = _MD_IMAGE.sub(lambda m: image(m.group(1)), text)
    text = _IMG_TAG.sub(lambda m: image((_IMG_ALT.search(m.group(0)) or [None, None, ""])[2]), text)
    text = _HTML.sub("", text)
    return text.replace("![", "!\\[")
