"""Find the series selectors in a PromQL expression, to check them against the contract.

Not a PromQL parser: it recognises names, label matchers and grouping clauses well enough
for the expressions in this package. Syntax itself is checked by promtool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
    |(?P<range>\[[^\]]*\])
    |(?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])*)
    |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
    |(?P<punct>==|!=|>=|<=|=~|!~|[-+*/%^<>=(){},])
    """,
    re.VERBOSE,
)
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"})


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...]


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None or match.lastgroup is None:
            raise ValueError(f"cannot read PromQL at {pos}: {expr[pos : pos + 20]!r}")
        if match.lastgroup != "ws":
            tokens.append((match.lastgroup, match.group()))
        pos = match.end()
    tokens.append(("end", ""))
    return tokens


def _unquote(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    return re.sub(r"\\(.)", r"\1", literal[1:-1])


def selectors(expr: str) -> list[Selector]:
    """Return every series selector in expr, in order."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    i = 0
    while tokens[i][0] != "end":
        kind, text = tokens[i]
        nxt = tokens[i + 1][1]
        if kind == "ident" and text in _GROUPING:
            i += 1
            if nxt == "(":  # a label list, not an expression
                while tokens[i][1] != ")":
                    i += 1
                i += 1
        elif kind == "ident" and (text in _KEYWORDS or nxt in ("(", "by", "without")):
            i += 1  # an operator, a function, or an aggregation (`sum by (...) (...)`)
        elif kind == "ident" or text == "{":
            name = text if kind == "ident" else ""
            i += 1 if kind == "ident" else 0
            matchers: list[Matcher] = []
            if tokens[i][1] == "{":
                i += 1
                while tokens[i][1] != "}":
                    label, op, value = (t[1] for t in tokens[i : i + 3])
                    matchers.append(Matcher(label, op, _unquote(value)))
                    i += 4 if tokens[i + 3][1] == "," else 3
                i += 1
            if not name:
                name = next((m.value for m in matchers if m.label == "__name__"), "")
                matchers = [m for m in matchers if m.label != "__name__"]
            found.append(Selector(name, tuple(matchers)))
        else:
            i += 1
    return found
