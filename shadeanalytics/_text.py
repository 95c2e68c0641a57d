"""Text made safe for the medium it reaches: one helper per medium, the one place for each rule.

Names, ids, GPU types and clouds come from files and servers, so any of them may hold a NUL,
an ESC or a bidi override. Each medium gets them in a form it can hold:

- a terminal or a log (:func:`for_terminal`): every control character escaped (``\\x1b``,
  ``\\n``, ``\\u202e``), so a value cannot move the cursor, clear a line or forge output;
- a page, an SVG and a CSV file (:func:`for_page`, :func:`for_svg`, :func:`for_csv`): the same
  escapes, except tab, line feed and carriage return, which those documents hold as text
  (a page and an SVG show them as spaces; a CSV cell holding one is quoted). What is left
  is valid XML 1.0, and no NUL or ESC reaches a file;
- a Slack webhook's ``text`` (:func:`for_slack`): one line per value (terminal escapes), and
  ``&``, ``<``, ``>`` as ``&amp;``, ``&lt;``, ``&gt;``, so a value cannot ping ``<!channel>``
  or show a link of its choosing.

Each is idempotent on its own output except :func:`for_slack` (``&`` becomes ``&amp;`` again).
"""

from __future__ import annotations

import re

__all__ = ["DOCUMENT_CONTROLS", "for_csv", "for_page", "for_slack", "for_svg", "for_terminal"]

# C0 and C1 controls, DEL, and the Unicode marks that reorder or hide text (bidi overrides,
# isolates, zero-width characters, line/paragraph separators), plus the two XML
# non-characters U+FFFE and U+FFFF and lone surrogates (neither is text in XML or UTF-8).
_TERMINAL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufffe\uffff\ud800-\udfff]"
)
#: What a page, an SVG or a CSV file does not get raw: the terminal's set less tab, LF and CR
#: (a regular expression character class, for a vectorised test such as ``str.contains``).
#: Lone surrogates, which no UTF-8 text (so no Arrow string) holds, are escaped too.
DOCUMENT_CONTROLS = (
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufffe\uffff]"
)
_DOCUMENT = re.compile(DOCUMENT_CONTROLS[:-1] + "\ud800-\udfff]")
_SLACK = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x0A:
        return "\\n"
    if code == 0x0D:
        return "\\r"
    if code == 0x09:
        return "\\t"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def for_terminal(text: object) -> str:
    """``str(text)`` for a terminal or a log line: every control character escaped.

    Example::

        >>> for_terminal("gpu\\x1b[2Jname\\n")
        'gpu\\\\x1b[2Jname\\\\n'
    """
    text = str(text)
    return _TERMINAL.sub(_escape, text) if _TERMINAL.search(text) else text


def for_page(text: str) -> str:
    """``text`` for an HTML page: controls escaped except tab, LF and CR (valid XML 1.0)."""
    return _DOCUMENT.sub(_escape, text) if _DOCUMENT.search(text) else text


def for_svg(document: str) -> str:
    """An SVG document with every character XML 1.0 refuses (a NUL, an ESC in a label)
    escaped as text: the rule of :func:`for_page`, applied to the whole document."""
    return for_page(document)


def for_csv(text: str) -> str:
    """A CSV cell's text: the rule of :func:`for_page` (tab, LF and CR stay: the writer quotes
    them, and a leading one gets the formula escape)."""
    return for_page(text)


def for_slack(text: object) -> str:
    """``str(text)`` for a Slack message's ``text``: terminal escapes, then Slack's own
    ``&``, ``<``, ``>`` escaping.

    Example::

        >>> for_slack("<!channel> & <https://x.example|click>")
        '&lt;!channel&gt; &amp; &lt;https://x.example|click&gt;'
    """
    return for_terminal(text).translate(_SLACK)
