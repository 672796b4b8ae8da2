"""Untrusted text shown as text: the one escape for Markdown, safe READMEs, quoted values.

Names, log headers, error messages, uploads, links and prompts come from files and
visitors; wherever they go into something that renders Markdown they pass through
:func:`md_escape` (or are quoted by :func:`shown`), and a run's README through
:func:`safe_readme`. Imports nothing of the sandbox.
"""

from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_TERMINAL_CONTROL = re.compile("\x1b(?:\\[[0-?]*[ -/]*[@-~]|\\][^\x07\x1b]*(?:\x07|\x1b\\\\)?|.)?|[\x00-\x08\x0b-\x1f\x7f\x9b]")


def encodable(text: str) -> str:
    """``text`` with every lone surrogate ("\\ud800", which JSON escapes and Python's
    ``surrogateescape`` can produce) replaced by U+FFFD, so it encodes to UTF-8 anywhere:
    a page, a terminal, SQLite. Applied once, where text from outside enters."""
    return _LONE_SURROGATE.sub("\ufffd", text) if text else text


def terminal_safe(text: str) -> str:
    """``text`` made `encodable`, without terminal escapes (ANSI colour, cursor and title
    sequences) or control characters other than tab and newline: for the CLI's output."""
    return _TERMINAL_CONTROL.sub("", encodable(text))


def visible_piece(piece: str, label: str | None = None) -> str:
    """How a token's text is shown: specials by name, empty and whitespace-only made visible."""
    if label is not None:
        return label
    if piece == "":
        return "∅"
    # A newline stays a line break but gets a visible mark, so the token boundary shows.
    return piece.replace("\n", "↵\n")


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


def shown(value: object, limit: int = 40) -> str:
    """A value as it may appear in a message: printable, short, inside a code span.

    Backticks and control characters are dropped so the value cannot break out of the
    code span and be rendered as Markdown (links, images) by ``st.warning``.
    """
    text = "".join(ch for ch in str(value) if ch.isprintable() and ch != "`")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{text}`" if text else "an empty value"
