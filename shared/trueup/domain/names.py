"""Client names: normalization (the only basis for automatic mapping), search and sort keys."""

from __future__ import annotations

import re
import unicodedata

# Legal-form words ignored at the end of a name ("Acme Pty Ltd" -> "acme").
LEGAL_SUFFIXES = frozenset(
    {"inc", "llc", "ltd", "limited", "corp", "corporation", "co", "company", "gmbh", "pty", "plc"}
)
_CONNECTIVES = frozenset({"and"})
_WORD = re.compile(r"[^\W_]+")


def name_tokens(name: str) -> list[str]:
    """The words of a name that matter: case, punctuation, `&`/`and` and trailing legal suffixes dropped."""
    text = unicodedata.normalize("NFKC", name).casefold().replace("&", " and ")
    # "A.B.C. Ltd" and "ABC Ltd" are the same name: dots inside a word join rather than split it.
    text = re.sub(r"(?<=\w)[.'’](?=\w)", "", text)
    tokens = [t for t in _WORD.findall(text) if t not in _CONNECTIVES]
    while len(tokens) > 1 and tokens[-1] in LEGAL_SUFFIXES:
        tokens.pop()
    return tokens


def normalize_name(name: str) -> str:
    """A key equal for names that differ only in case, punctuation, whitespace, `&`/`and` or legal suffix.

    >>> normalize_name("Smith & Jones, L.L.C.") == normalize_name("smith and jones")
    True
    """
    return "".join(name_tokens(name))


def folded(text: str) -> str:
    """Lower case without accents: how a search matches a client's name ("Societe" finds "Société")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_NUMBERS = re.compile(r"(\d+)")


def natural(name: str) -> list[str | int]:
    """A name's sort key as a person reads it: any case, no accents, "Client 2" before "Client 10".

    The parts alternate text, number, text... so two keys always compare text with text."""
    return [int(part) if index % 2 else part for index, part in enumerate(_NUMBERS.split(folded(name)))]
