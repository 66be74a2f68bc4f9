"""Language knowledge in one place: one profile per language (assistant/text/profiles/*.yaml)
with its stopwords, stemmer, question words, follow-up words and answer-type cues. Cleaning,
BM25, follow-ups and answering read it from here; adding a language means adding a profile."""

from assistant.text.profiles import LanguageProfile, known_languages, profile, profiles

__all__ = ["LanguageProfile", "known_languages", "profile", "profiles"]
