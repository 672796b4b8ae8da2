"""HTML views of generated text and of a prompt's tokens, safe for model output.

Model output and prompts are untrusted text: every piece of it goes through `html.escape`
(quotes included, since pieces also land in ``title`` attributes) before it is put in markup.
The functions return self-contained HTML strings (inline styles, no scripts) for `st.html`.
Nothing here imports Streamlit.
"""

from __future__ import annotations

from html import escape

from sandbox.text import visible_piece

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

    ``tokens`` are token events of `sandbox.worker.generation.generate` (``id``, ``piece``,
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
