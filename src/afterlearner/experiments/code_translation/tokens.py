"""Tokenizers for the two languages and the shared vocabulary of the translation model.

JavaScript is split into identifiers, integers and operators. Python additionally gets
``<nl>``, ``<indent>`` and ``<dedent>`` tokens (as Python's own tokenizer does), so that the model
emits the block structure explicitly and :func:`python_code` can rebuild runnable source.
"""

from __future__ import annotations

import re

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
NEWLINE, INDENT, DEDENT = "<nl>", "<indent>", "<dedent>"
SPECIALS = [PAD, BOS, EOS, UNK, NEWLINE, INDENT, DEDENT]
_TOKEN = re.compile(r"===|!==|==|!=|<=|>=|&&|\|\||\+\+|\+=|-=|\*=|[A-Za-z_]\w*|\d+|[-+*<>=!?:(){};,.]")


def split(code: str) -> list[str]:
    """Tokens of one line or a whole program (whitespace dropped); raises on a character it cannot read."""
    tokens, position = [], 0
    for match in _TOKEN.finditer(code):
        if code[position : match.start()].strip():
            raise ValueError(f"cannot tokenize {code[position : match.start()]!r}")
        tokens.append(match.group())
        position = match.end()
    if code[position:].strip():
        raise ValueError(f"cannot tokenize {code[position:]!r}")
    return tokens


def javascript_tokens(code: str) -> list[str]:
    return split(code)


def python_tokens(code: str) -> list[str]:
    """Tokens of Python source with explicit newline/indent/dedent tokens (4-space indentation)."""
    tokens: list[str] = []
    level = 0
    for line in code.splitlines():
        if not line.strip():
            continue
        indent = (len(line) - len(line.lstrip(" "))) // 4
        tokens += [INDENT] * max(0, indent - level) + [DEDENT] * max(0, level - indent)
        level = indent
        tokens += split(line) + [NEWLINE]
    return tokens


def python_code(tokens: list[str]) -> str:
    """Python source from tokens (inverse of :func:`python_tokens`, up to spacing)."""
    lines: list[str] = []
    level, current = 0, []
    for token in tokens:
        if token == INDENT:
            level += 1
        elif token == DEDENT:
            level = max(0, level - 1)
        elif token == NEWLINE:
            lines.append("    " * level + " ".join(current))
            current = []
        elif token not in SPECIALS:
            current.append(token)
    if current:
        lines.append("    " * level + " ".join(current))
    return "\n".join(lines) + "\n"


class Vocabulary:
    """Token ↔ id. Specials first, so ids 0..3 are pad, bos, eos, unk in every vocabulary."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = SPECIALS + sorted(set(tokens) - set(SPECIALS))
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(token, self.index[UNK]) for token in tokens]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.tokens[i] for i in ids]
