"""Caption tokenizer equal to coco-caption's PTB tokenizer (Stanford PTBTokenizer -lowerCase + punctuation removal).

coco-caption runs Java's PTBTokenizer over every caption, then drops the tokens in its PUNCTUATIONS list. This is
the same effect in pure Python for ordinary captions: lowercase, clitics split (``man's`` -> ``man 's``,
``don't`` -> ``do n't``, ``cannot`` -> ``can not``), punctuation dropped, abbreviations (``mr.``, ``u.s.``),
numbers (``1,000``, ``3.5``, ``10:30``, ``1/2``) and hyphenated words kept whole, other symbols (``&``, ``%``, ``$``,
``#``) kept as tokens and brackets spelled ``-lrb-``/``-rrb-`` (coco-caption's list only removes the upper-case forms,
so the lower-cased ones survive). This differs from ``data_pipelines.vocab.tokenize`` (which drops every symbol), so
scores equal pycocoevalcap's on references that contain such symbols.
"""
from __future__ import annotations

import re

# What coco-caption removes after tokenizing (its upper-case bracket names never match lower-cased output).
COCO_PUNCTUATION = frozenset(["''", "'", "``", "`", ".", "?", "!", ",", ":", "-", "--", "...", ";"])

_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
# Unicode quotes/ellipsis as PTBTokenizer normalises them (apostrophe-like quotes become plain "'").
_NORMALISE = str.maketrans({"\u2019": "'", "\u2018": "`", "\u201c": '"', "\u201d": '"', "\u2026": "..."})
# Words PTBTokenizer splits in two ("gonna" -> "gon na").
_SPLIT_WORDS = re.compile(r"(?i)\b(can)(not)\b|\b(gon|got|wan)(na|ta)\b|\b(lem|gim)(me)\b")
_NEGATION = re.compile(r"(?i)(?<=[^\W_])(n't)\b")
_CLITIC = re.compile(r"(?i)(?<=[^\W_])('(?:s|re|ve|ll|d|m))\b")
# Abbreviations PTBTokenizer keeps with their dot (a sentence-final dot after them is a separate token, dropped).
_ABBREVIATIONS = ("mr|mrs|ms|dr|st|jr|sr|mt|vs|etc|inc|co|corp|ltd|gen|col|capt|prof|rev|sen|gov|"
                  "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
# Capitalised words after which PTBTokenizer reads "x." as a sentence end rather than an initial.
_SENTENCE_STARTS = ("The|A|An|This|That|These|It|He|She|They|We|There|In|At|As|If|So|But|When|While|After|Then|"
                    "Her|Their|Our|You|What|Some|One|Many|Here|Yet")
_LETTER = r"[^\W\d_]"
_ALNUM = r"[^\W_]"
_TOKEN = re.compile(
    rf"(?:{_LETTER}\.){{2,}}"                                   # acronyms: u.s., p.m., d.c.
    rf"|\b(?i:{_ABBREVIATIONS})\.(?!{_ALNUM})"                  # titles, months, company suffixes
    rf"|\b(?i:no)\.(?=\s*\d)"                                   # "no. 5"
    rf"|\b{_LETTER}\.(?!{_ALNUM})(?!\s+(?:{_SENTENCE_STARTS})\b)"    # an initial, unless a sentence starts next
    rf"|(?<!\S)-\d+(?:[.,:]\d+)*"                                # negative numbers
    rf"|{_ALNUM}*@{_ALNUM}+(?:\.{_ALNUM}+)*"                     # e-mail addresses, @handles
    rf"|'\d0s\b|'[nN]'|(?i:n't\b|'(?:s|re|ve|ll|d|m)\b)"     # '90s, 'n', split clitics
    rf"|{_ALNUM}+(?:(?:[-./]|(?<=\d)[,:](?=\d)|(?<={_LETTER})'(?={_LETTER})){_ALNUM}+)*"  # words, numbers
    r"|\.+|-+|[!?]+|``|''|[^\s\w]",                             # punctuation runs, then any other single symbol
)


def ptb_tokenize(text: str) -> list[str]:
    """Tokens of ``text`` as coco-caption scores them: ``ptb_tokenize("A man's (red) car.") == ["a", "man", "'s",
    "-lrb-", "red", "-rrb-", "car"]``."""
    text = text.translate(_NORMALISE)
    text = _SPLIT_WORDS.sub(lambda match: " ".join(group for group in match.groups() if group), text)
    text = _CLITIC.sub(r" \1", _NEGATION.sub(r" \1", text))
    tokens = []
    for token in _TOKEN.findall(text):
        token = _BRACKETS.get(token, token.lower())
        if token.startswith("--"):
            token = "--"
        elif token.startswith(".."):
            token = "..."
        if token not in COCO_PUNCTUATION and token != '"':
            tokens.append(token)
    return tokens


def tokenize_caption(text: str) -> str:
    """Space-joined ``ptb_tokenize`` output: the string form pycocoevalcap's scorers take."""
    return " ".join(ptb_tokenize(text))
