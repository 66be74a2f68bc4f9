"""Interface strings in Swedish, Finnish and English, and the choice of language.

The answer's own language follows the question (assistant.language); these strings are only
the interface around it: labels, notices and the login page.
"""

from __future__ import annotations

from typing import Literal, cast

Lang = Literal["sv", "fi", "en"]
LANGUAGES: tuple[Lang, ...] = ("sv", "fi", "en")

EXAMPLES: tuple[str, ...] = (
    "Vilka principer gäller för forskningen i Region Stockholm?",
    "Mikä on Lahden Tilakeskuksen liikevaihdon ennuste vuodelle 2025?",
    "When did the new financial system Jämerä go live?",
)

STRINGS: dict[str, dict[Lang, str]] = {
    "title": {
        "sv": "Strategiassistenten",
        "fi": "Strategia-avustaja",
        "en": "Strategy assistant",
    },
    "subtitle": {
        "sv": "Svar ur organisationens strategidokument och rapporter, med källhänvisningar. "
        "Klicka på en hänvisning [1] för att se citerat stycke.",
        "fi": "Vastaukset organisaation strategia-asiakirjoista ja raporteista lähdeviitteineen. "
        "Napsauta viitettä [1] nähdäksesi lainatun kohdan.",
        "en": "Answers from the organisation's strategy documents and reports, with citations. "
        "Click a citation [1] to see the quoted passage.",
    },
    "chat_label": {"sv": "Samtal", "fi": "Keskustelu", "en": "Conversation"},
    "question_label": {"sv": "Fråga", "fi": "Kysymys", "en": "Question"},
    "question_placeholder": {
        "sv": "Skriv en fråga på svenska, finska eller engelska …",
        "fi": "Kirjoita kysymys suomeksi, ruotsiksi tai englanniksi …",
        "en": "Ask a question in English, Swedish or Finnish …",
    },
    "send": {"sv": "Skicka", "fi": "Lähetä", "en": "Send"},
    "examples": {"sv": "Exempelfrågor", "fi": "Esimerkkikysymyksiä", "en": "Example questions"},
    "sources": {"sv": "Källor", "fi": "Lähteet", "en": "Sources"},
    "sources_empty": {
        "sv": "Källorna för svaret visas här.",
        "fi": "Vastauksen lähteet näkyvät tässä.",
        "en": "The sources of the answer appear here.",
    },
    "sources_for": {"sv": "Svar {n}", "fi": "Vastaus {n}", "en": "Answer {n}"},
    "earlier": {"sv": "Tidigare svar", "fi": "Aiemmat vastaukset", "en": "Earlier answers"},
    "retrieved": {
        "sv": "Hämtade stycken",
        "fi": "Haetut kohdat",
        "en": "Retrieved passages",
    },
    "retrieved_empty": {
        "sv": "Inga stycken hämtade än.",
        "fi": "Kohtia ei ole vielä haettu.",
        "en": "No passages retrieved yet.",
    },
    "cited": {"sv": "citerad", "fi": "lainattu", "en": "cited"},
    "file": {"sv": "Fil", "fi": "Tiedosto", "en": "File"},
    "page": {"sv": "sida", "fi": "sivu", "en": "page"},
    "score": {"sv": "poäng", "fi": "pisteet", "en": "score"},
    "refusal_notice": {
        "sv": "Dokumenten besvarar inte frågan, så assistenten gissar inte. "
        "Formulera om frågan eller titta på de hämtade styckena.",
        "fi": "Asiakirjat eivät vastaa kysymykseen, joten avustaja ei arvaa. "
        "Muotoile kysymys uudelleen tai katso haetut kohdat.",
        "en": "The documents do not answer this question, so the assistant does not guess. "
        "Rephrase the question or look at the retrieved passages.",
    },
    "unsupported": {
        "sv": "Utan giltig källa:",
        "fi": "Ilman pätevää lähdettä:",
        "en": "Without a valid source:",
    },
    "feedback_title": {
        "sv": "Återkoppling på svar {n}",
        "fi": "Palaute vastauksesta {n}",
        "en": "Feedback on answer {n}",
    },
    "feedback_answer": {"sv": "Svar nr", "fi": "Vastaus nro", "en": "Answer no."},
    "feedback_rating": {"sv": "Betyg", "fi": "Arvio", "en": "Rating"},
    "rating_up": {"sv": "Bra svar", "fi": "Hyvä vastaus", "en": "Good answer"},
    "rating_down": {"sv": "Dåligt svar", "fi": "Huono vastaus", "en": "Bad answer"},
    "feedback_comment": {
        "sv": "Kommentar (valfri)",
        "fi": "Kommentti (vapaaehtoinen)",
        "en": "Comment (optional)",
    },
    "feedback_send": {"sv": "Skicka kommentar", "fi": "Lähetä kommentti", "en": "Send comment"},
    "feedback_thanks": {
        "sv": "Tack! Återkopplingen är sparad.",
        "fi": "Kiitos! Palaute on tallennettu.",
        "en": "Thank you! Your feedback is saved.",
    },
    "feedback_unknown": {
        "sv": "Det finns inget svar med det numret.",
        "fi": "Sillä numerolla ei ole vastausta.",
        "en": "There is no answer with that number.",
    },
    "rate_limited": {
        "sv": "För många frågor på kort tid. Vänta en stund och försök igen.",
        "fi": "Liian monta kysymystä lyhyessä ajassa. Odota hetki ja yritä uudelleen.",
        "en": "Too many questions in a short time. Wait a moment and try again.",
    },
    "feedback_too_long": {
        "sv": "Kommentaren får vara högst {n} tecken lång.",
        "fi": "Kommentti saa olla enintään {n} merkkiä pitkä.",
        "en": "The comment may be at most {n} characters long.",
    },
    "invalid_text": {
        "sv": "Texten innehåller ett ogiltigt tecken.",
        "fi": "Tekstissä on virheellinen merkki.",
        "en": "The text contains an invalid character.",
    },
    "new_chat": {"sv": "Nytt samtal", "fi": "Uusi keskustelu", "en": "New chat"},
    "conversations": {"sv": "Dina samtal", "fi": "Keskustelusi", "en": "Your conversations"},
    "rename_label": {
        "sv": "Nytt namn på samtalet",
        "fi": "Keskustelun uusi nimi",
        "en": "New name for the conversation",
    },
    "rename": {"sv": "Byt namn", "fi": "Nimeä uudelleen", "en": "Rename"},
    "delete_conversation": {
        "sv": "Radera samtalet",
        "fi": "Poista keskustelu",
        "en": "Delete chat",
    },
    "documents": {"sv": "Dokument", "fi": "Asiakirjat", "en": "Documents"},
    "ask_within": {
        "sv": "Fråga bara i de markerade dokumenten (inga markerade: alla)",
        "fi": "Kysy vain valituista asiakirjoista (ei valintaa: kaikki)",
        "en": "Ask only within the selected documents (none selected: all)",
    },
    "upload_label": {
        "sv": "Lägg till dokument (släpp filer här)",
        "fi": "Lisää asiakirjoja (pudota tiedostot tähän)",
        "en": "Add documents (drop files here)",
    },
    "reindex": {
        "sv": "Indexera om valda dokument (inga valda: alla)",
        "fi": "Indeksoi valitut asiakirjat uudelleen (ei valintaa: kaikki)",
        "en": "Re-index the selected documents (none selected: all)",
    },
    "reindex_started": {
        "sv": "Omindexeringen börjar …",
        "fi": "Uudelleenindeksointi alkaa …",
        "en": "Re-indexing starts …",
    },
    "reindex_progress": {
        "sv": "Indexerar om: {done} av {total} filer klara",
        "fi": "Indeksoidaan uudelleen: {done}/{total} tiedostoa valmiina",
        "en": "Re-indexing: {done} of {total} files done",
    },
    "reindex_done": {
        "sv": "Omindexering klar: {total} dokument, {updated} skrivna på nytt, "
        "{unchanged} oförändrade, {failed} misslyckade.",
        "fi": "Uudelleenindeksointi valmis: {total} asiakirjaa, {updated} kirjoitettu uudelleen, "
        "{unchanged} ennallaan, {failed} epäonnistui.",
        "en": "Re-index done: {total} documents, {updated} written again, {unchanged} "
        "unchanged, {failed} failed.",
    },
    "upload_ok": {"sv": "indexerad", "fi": "indeksoitu", "en": "indexed"},
    "delete_documents": {
        "sv": "Ta bort markerade dokument",
        "fi": "Poista valitut asiakirjat",
        "en": "Delete selected documents",
    },
    "documents_deleted": {
        "sv": "{n} dokument borttagna.",
        "fi": "{n} asiakirjaa poistettu.",
        "en": "{n} documents deleted.",
    },
    "not_admin": {
        "sv": "Bara administratörer kan ändra dokumenten.",
        "fi": "Vain ylläpitäjät voivat muuttaa asiakirjoja.",
        "en": "Only administrators can change the documents.",
    },
    "library_empty": {
        "sv": "Inga dokument är indexerade än.",
        "fi": "Asiakirjoja ei ole vielä indeksoitu.",
        "en": "No documents are indexed yet.",
    },
    "library_caption": {
        "sv": "{n} indexerade dokument",
        "fi": "{n} indeksoitua asiakirjaa",
        "en": "{n} indexed documents",
    },
    "col_title": {"sv": "Titel", "fi": "Otsikko", "en": "Title"},
    "col_language": {"sv": "Språk", "fi": "Kieli", "en": "Language"},
    "col_pages": {"sv": "Sidor", "fi": "Sivuja", "en": "Pages"},
    "col_date": {"sv": "Datum", "fi": "Päivämäärä", "en": "Date"},
    "col_groups": {"sv": "Grupper", "fi": "Ryhmät", "en": "Groups"},
    "public": {"sv": "alla", "fi": "kaikki", "en": "everyone"},
    "role_question": {"sv": "Fråga", "fi": "Kysymys", "en": "Question"},
    "role_answer": {"sv": "Svar", "fi": "Vastaus", "en": "Answer"},
    "copied": {"sv": "Kopierat", "fi": "Kopioitu", "en": "Copied"},
    "error": {"sv": "Fel", "fi": "Virhe", "en": "Error"},
    "close": {"sv": "Stäng", "fi": "Sulje", "en": "Close"},
    "cancel": {"sv": "Avbryt", "fi": "Peruuta", "en": "Cancel"},
    "copy": {
        "sv": "Kopiera som text med källor",
        "fi": "Kopioi tekstinä lähteineen",
        "en": "Copy as text with sources",
    },
    "chars_left": {
        "sv": "{n} tecken kvar",
        "fi": "{n} merkkiä jäljellä",
        "en": "{n} characters left",
    },
    "offline": {
        "sv": "Anslutningen till servern bröts. Samtalet finns kvar; försök igen om en stund.",
        "fi": "Yhteys palvelimeen katkesi. Keskustelu on tallessa; yritä hetken päästä uudelleen.",
        "en": "The connection to the server was lost. The conversation is kept; try again "
        "in a moment.",
    },
    "open_original": {
        "sv": "Öppna originalet",
        "fi": "Avaa alkuperäinen",
        "en": "Open the original",
    },
    "back_to_chat": {
        "sv": "Tillbaka till svaret",
        "fi": "Takaisin vastaukseen",
        "en": "Back to the answer",
    },
    "passage_not_found": {
        "sv": "Det citerade stället hittades inte på sidan; hela sidan visas.",
        "fi": "Lainattua kohtaa ei löytynyt sivulta; koko sivu näytetään.",
        "en": "The quoted passage was not found on the page; the whole page is shown.",
    },
    "question_empty": {
        "sv": "Skriv en fråga först.",
        "fi": "Kirjoita ensin kysymys.",
        "en": "Type a question first.",
    },
    "question_too_long": {
        "sv": "Frågan är för lång: högst {n} tecken.",
        "fi": "Kysymys on liian pitkä: enintään {n} merkkiä.",
        "en": "The question is too long: at most {n} characters.",
    },
    "index_empty": {
        "sv": "Inga dokument är indexerade än; be en administratör lägga till dokument.",
        "fi": "Asiakirjoja ei ole vielä indeksoitu; pyydä ylläpitäjää lisäämään niitä.",
        "en": "No documents are indexed yet; ask an administrator to add some.",
    },
    "backend_unavailable": {
        "sv": "Tjänsten svarar inte just nu. Försök igen om en stund.",
        "fi": "Palvelu ei vastaa juuri nyt. Yritä hetken päästä uudelleen.",
        "en": "The service is not answering right now. Try again in a moment.",
    },
    "answer_failed": {
        "sv": "Frågan kunde inte besvaras på grund av ett fel. Försök igen.",
        "fi": "Kysymykseen ei voitu vastata virheen vuoksi. Yritä uudelleen.",
        "en": "The question could not be answered because of an error. Try again.",
    },
    "not_signed_in": {
        "sv": "Du är inte inloggad. Ladda om sidan och logga in.",
        "fi": "Et ole kirjautunut. Lataa sivu uudelleen ja kirjaudu.",
        "en": "You are not signed in. Reload the page and sign in.",
    },
    "frame_refused": {
        "sv": "Sidan {origin} får inte visa assistenten i en ram. Be assistentens "
        "administratör att tillåta den.",
        "fi": "Sivu {origin} ei saa näyttää avustajaa kehyksessä. Pyydä avustajan "
        "ylläpitäjää sallimaan se.",
        "en": "The page {origin} may not show the assistant in a frame. Ask the assistant's "
        "administrator to allow it.",
    },
    "open_in_tab": {
        "sv": "Öppna assistenten i en egen flik",
        "fi": "Avaa avustaja omaan välilehteen",
        "en": "Open the assistant in a tab of its own",
    },
    "login_title": {"sv": "Logga in", "fi": "Kirjaudu sisään", "en": "Sign in"},
    "login_token": {"sv": "Åtkomsttoken", "fi": "Käyttötunnus", "en": "Access token"},
    "login_submit": {"sv": "Logga in", "fi": "Kirjaudu", "en": "Sign in"},
    "login_invalid": {
        "sv": "Okänd token.",
        "fi": "Tuntematon tunnus.",
        "en": "Unknown token.",
    },
}


def t(key: str, lang: str, **values: object) -> str:
    """The string for key in lang (English when lang is not an interface language)."""
    table = STRINGS[key]
    text = table.get(cast(Lang, lang)) or table["en"]
    return text.format(**values) if values else text


def _as_lang(code: str | None) -> Lang | None:
    primary = (code or "").strip().lower().replace("_", "-").split("-")[0]
    return cast(Lang, primary) if primary in LANGUAGES else None


def parse_accept_language(header: str | None) -> list[str]:
    """Language tags of an Accept-Language header, best first (q=0 entries dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            ranked.append((-quality, index, tag))
    return [tag for _, _, tag in sorted(ranked)]


def choose_language(
    setting: str, *, requested: str | None = None, accept_language: str | None = None
) -> Lang:
    """An explicit ?lang= first (an embedding page decides), then the ui_language setting
    unless it is "auto", then the browser's Accept-Language, then English."""
    chosen = _as_lang(requested)
    if chosen:
        return chosen
    if setting != "auto" and (fixed := _as_lang(setting)):
        return fixed
    for tag in parse_accept_language(accept_language):
        if found := _as_lang(tag):
            return found
    return "en"


CLIENT_KEYS = (
    "title",
    "error",
    "close",
    "role_question",
    "role_answer",
    "sources",
    "copy",
    "copied",
    "chars_left",
    "offline",
    "back_to_chat",
)


def client_texts(lang: str) -> dict[str, str]:
    """The strings the page's script needs (assistant/web/static/chat.js), with the language
    itself under "lang"."""
    return {"lang": lang, **{key: t(key, lang) for key in CLIENT_KEYS}}


# Gradio's own strings that the chat overrides, by the key of Gradio's translation files: the
# copy button of a message copies plain text with its sources (static/chat.js), not Gradio's
# raw Markdown. The rest (Clear, Retry, Like, Dislike, the drop zone) keep Gradio's wording.
GRADIO_KEYS = {
    "chatbot.copy_message": "copy",
    "chatbot.copied_message": "copied",
}


def gradio_translations() -> dict[str, dict[str, str]]:
    """Gradio's frontend strings overridden per interface language (for gr.I18n)."""
    return {
        lang: {gradio_key: t(key, lang) for gradio_key, key in GRADIO_KEYS.items()}
        for lang in LANGUAGES
    }
