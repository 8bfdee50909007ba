"""Text checks shared by every TTS backend: empty text, length, sentence chunks, languages, syllables."""
from __future__ import annotations

import re

MAX_TEXT_CHARS = 5000  # about five minutes of speech; longer scripts belong in several shots
MAX_CHUNK_CHARS = 250  # one backend pass; longer text is split at sentence ends and joined

# "en-it" is English spoken with an Italian accent.
LANGUAGES = ["en", "it", "en-it"]

_SENTENCE_END = re.compile(r"(?<=[.!?…;:])\s+")


def clean_text(text: str) -> str:
    if text is None or not str(text).strip():
        raise ValueError("Input 'text' is empty: give the line the character should say.")
    text = re.sub(r"\s+", " ", str(text)).strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"Input 'text' is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}. "
                         "Split the script into several lines or shots.")
    if not re.search(r"\w", text):
        raise ValueError("Input 'text' has no letters or digits to speak.")
    return text


def split_sentences(text: str, max_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Sentence-sized chunks of at most max_chars (long sentences are cut at commas, then at spaces)."""
    chunks: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        sentence = sentence.strip()
        while len(sentence) > max_chars:
            cut = sentence.rfind(", ", 0, max_chars)
            cut = cut + 1 if cut > max_chars // 3 else sentence.rfind(" ", 0, max_chars)
            cut = cut if cut > 0 else max_chars
            chunks.append(sentence[:cut].strip())
            sentence = sentence[cut:].strip()
        if sentence:
            chunks.append(sentence)
    # Merge short neighbours so each backend pass has enough context for natural prosody.
    merged: list[str] = []
    for chunk in chunks:
        if merged and len(merged[-1]) + 1 + len(chunk) <= max_chars // 2:
            merged[-1] = f"{merged[-1]} {chunk}"
        else:
            merged.append(chunk)
    return merged


def check_language(language: str, supported: list[str], backend: str) -> str:
    lang = (language or "").strip().lower()
    if lang not in supported:
        raise ValueError(f"Language {language!r} is not supported by the {backend} backend "
                         f"(supported: {', '.join(supported)}).")
    return lang


def count_syllables(text: str) -> int:
    """Vowel-group count: a language-agnostic estimate that is close for English and Italian."""
    words = re.findall(r"[^\W\d_]+", text.lower())
    total = 0
    for word in words:
        groups = re.findall(r"[aeiouyàèéìíòóùú]+", word)
        n = len(groups)
        if n > 1 and word.endswith("e") and not word.endswith(("le", "ee")) and groups[-1] == "e":
            n -= 1  # silent final e (English); Italian final e is short and rarely ends a long word here
        total += max(n, 1)
    return total


def count_words(text: str) -> int:
    return len(re.findall(r"[^\W_]+(?:'[^\W_]+)?", text))
