"""Loaders on real files of each format, built here: a PDF (hand-written PDF operators), a
Word file (python-docx), HTML and Markdown; cleaning of PDF-extracted text."""

from __future__ import annotations

from pathlib import Path

from assistant.ingest.chunking import sentence_spans
from assistant.ingest.cleaning import clean_page
from assistant.ingest.documents import chunk_document, load_document


def _pdf(path: Path, pages: list[list[str]], title: str = "") -> None:
    """A minimal valid PDF: one Helvetica text line per entry, top to bottom."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for index, lines in enumerate(pages):
        content_id = 4 + 2 * index
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 800 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    info_id = len(objects) + 1
    objects.append(f"<< /Title ({title}) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010} 00000 n \n".encode() for o in offsets)
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info_id} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    path.write_bytes(bytes(out))


def test_pdf_pages_titles_and_repaired_lines(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    _pdf(
        path,
        [
            [
                "Annual report",
                "1. Budget",
                "The library budget for 2026 is 4.2 mil-",
                "lion euros and it was approved by the",
                "council in March.",
                "Page 1",
            ],
            ["2. Staff", "The library employs 31 people.", "Salaries 1 200 1 300 1 400", "Page 2"],
        ],
        title="Library annual report",
    )
    document = load_document(path)
    assert document.title == "Library annual report"
    assert [p.number for p in document.pages] == [1, 2]
    assert "4.2 million euros and it was approved by the council in March." in (
        document.pages[0].text
    )
    assert "Salaries 1 200 1 300 1 400" in document.pages[1].text.split("\n")
    assert document.language == "en"
    chunks = chunk_document(document, 180, 40, "hash")
    assert {c.meta.page for c in chunks} == {1, 2}
    assert any(c.meta.section == "2. Staff" for c in chunks)


def test_docx_headings_and_tables(tmp_path: Path) -> None:
    import docx

    path = tmp_path / "plan.docx"
    document = docx.Document()
    document.core_properties.title = "Verksamhetsplan"
    document.add_heading("Mål för 2027", level=1)
    document.add_paragraph("Regionen ska halvera utsläppen till 2030 och öka forskningen.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "Post", "Belopp"
    table.cell(1, 0).text, table.cell(1, 1).text = "Forskning", "12 000"
    document.save(str(path))
    loaded = load_document(path)
    assert loaded.title == "Verksamhetsplan"
    assert loaded.pages[0].number is None
    assert "Mål för 2027" in [h for _, h in loaded.pages[0].headings]
    assert "Forskning | 12 000" in loaded.pages[0].text
    assert loaded.language == "sv"


def test_html_drops_scripts_and_keeps_structure(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Strategia</title><script>alert('x')</script></head><body>"
        "<nav>Valikko</nav><h1>Tavoitteet</h1><p>Kaupunki vähentää päästöjä vuoteen 2030 "
        "mennessä merkittävästi.</p><ul><li>Ensimmäinen kohta</li></ul>"
        "<table><tr><td>Liikevaihto</td><td>75 754</td></tr></table></body></html>",
        "utf-8",
    )
    loaded = load_document(path)
    text = loaded.pages[0].text
    assert loaded.title == "Strategia"
    assert "alert" not in text and "Valikko" not in text
    assert "• Ensimmäinen kohta" in text.split("\n")
    assert "Liikevaihto | 75 754" in text
    assert [h for _, h in loaded.pages[0].headings] == ["Tavoitteet"]
    assert loaded.language == "fi"


# DocBook HTML as in evals/corpora/debian-reference-de (Debian-Referenz, GPL-2+): source lines
# wrap inside paragraphs, inline markup touches words, navigation and admonitions are tables.
_DOCBOOK = """<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Kapitel 8. I18N und L10N</title></head>
  <body>
    <div class="navheader">
      <table width="100%" summary="Navigation header">
        <tr><th colspan="3" align="center">Kapitel 8. I18N und L10N</th></tr>
        <tr>
          <td align="left"><a accesskey="p" href="ch07.de.html"><img alt="Zur\u00fcck"/></a> </td>
          <th width="60%" align="center"> </th>
          <td align="right"> <a accesskey="n" href="ch09.de.html"><img alt="Weiter"/></a></td>
        </tr>
      </table>
    </div>
    <div class="chapter">
      <h1 class="title"><a id="_i18n_and_l10n"/>Kapitel 8. I18N und L10N</h1>
      <div class="toc"><p><strong>Inhaltsverzeichnis</strong></p></div>
      <p>Das Verhalten von Programmen, die Internationalisierung unterst\u00fctzen, wird
bestimmt durch die Umgebungsvariable "<code class="literal">$LANG</code>". Die
Unterst\u00fctzung erfordert die Installation von <code class="literal">locales</code>-Paketen
und ist mittels
<span class="citerefentry"><span class="refentrytitle">gettext</span>(1)</span>-Infrastruktur
lokalisiert.</p>
      <div class="tip" style="margin-left: 0.5in; margin-right: 0.5in;">
        <table border="0" summary="Tip">
          <tr>
            <td rowspan="2" align="center" valign="top">
              <img alt="[Tipp]" src="images/tip.png"/></td>
            <th align="left">Tipp</th>
          </tr>
          <tr>
            <td align="left" valign="top">
              <p>Sowohl das neue "<code class="literal">en_US.UTF-8</code>" wie auch das
alte "<code class="literal">C</code>"-Gebietsschema nutzen US-Englisch.</p>
              <p>Verwenden Sie sonst das Gebietsschema
"<code class="literal">C.UTF-8</code>" (kein Standard).</p>
            </td>
          </tr>
        </table>
      </div>
      <ul class="itemizedlist">
        <li class="listitem">
          <p> "<code class="literal">/init</code>" ist ein Shell-Skript, wenn das initfamfs durch
<code class="literal">initramfs-tools</code> erstellt wurde. </p>
          <ul class="itemizedlist">
            <li class="listitem"><p> Die verf\u00fcgbaren Befehle gehen auf
<code class="literal">busybox</code>(1) zur\u00fcck.  </p></li>
          </ul>
        </li>
      </ul>
      <pre class="screen"># dpkg-reconfigure keyboard-configuration
# dpkg-reconfigure console-setup</pre>
      <table class="table" summary="Liste typischer journalctl-Befehle" border="1">
        <thead><tr><th style="text-align: left"> T\u00e4tigkeit </th>
          <th style="text-align: left"> Befehl </th></tr></thead>
        <tbody><tr>
          <td style="text-align: left"> Protokoll f\u00fcr Systemdienste und Kernel vom letzten
Boot-Vorgang anzeigen </td>
          <td style="text-align: left"> "<code class="literal">journalctl -b --system</code>" </td>
        </tr></tbody>
      </table>
    </div>
    <div class="navfooter">
      <table width="100%" summary="Navigation footer">
        <tr>
          <td align="left" valign="top">Kapitel 7. GUI-System </td>
          <td align="center"><a accesskey="h" href="index.de.html"><img alt="Zum Anfang"/></a></td>
          <td align="right" valign="top"> Kapitel 9. Systemtipps</td>
        </tr>
      </table>
    </div>
  </body>
</html>
"""


def test_html_lines_are_blocks_with_inline_markup_joined(tmp_path: Path) -> None:
    path = tmp_path / "ch08.de.html"
    path.write_text(_DOCBOOK, "utf-8")
    loaded = load_document(path)
    lines = loaded.pages[0].text.split("\n")
    assert lines[:2] == [
        "Kapitel 8. I18N und L10N",
        "Das Verhalten von Programmen, die Internationalisierung unterstützen, wird bestimmt "
        'durch die Umgebungsvariable "$LANG". Die Unterstützung erfordert die Installation von '
        "locales-Paketen und ist mittels gettext(1)-Infrastruktur lokalisiert.",
    ]
    # Admonition: a label line, then its paragraphs as paragraphs.
    assert lines[2:5] == [
        "Tipp",
        'Sowohl das neue "en_US.UTF-8" wie auch das alte "C"-Gebietsschema nutzen US-Englisch.',
        'Verwenden Sie sonst das Gebietsschema "C.UTF-8" (kein Standard).',
    ]
    # A nested list item once, on its own line.
    assert lines[5:7] == [
        '• "/init" ist ein Shell-Skript, wenn das initfamfs durch initramfs-tools erstellt wurde.',
        "• Die verfügbaren Befehle gehen auf busybox(1) zurück.",
    ]
    assert lines[7:] == [
        "# dpkg-reconfigure keyboard-configuration",
        "# dpkg-reconfigure console-setup",
        "Tätigkeit | Befehl",
        "Protokoll für Systemdienste und Kernel vom letzten Boot-Vorgang anzeigen | "
        '"journalctl -b --system"',
    ]
    # Navigation (header, footer, table of contents) is gone: the title appears once.
    assert [h for _, h in loaded.pages[0].headings] == ["Kapitel 8. I18N und L10N"]
    assert loaded.title == "Kapitel 8. I18N und L10N"


def test_html_line_breaks_and_text_outside_blocks(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<html><body>Vorwort ohne Absatz<div>Adresse:<br/>Hauptstraße 1<br>Berlin</div>"
        "<p>Ein <em>betonter</em>\n   Satz.</p></body></html>",
        "utf-8",
    )
    text = load_document(path).pages[0].text
    assert text.split("\n") == [
        "Vorwort ohne Absatz",
        "Adresse:",
        "Hauptstraße 1",
        "Berlin",
        "Ein betonter Satz.",
    ]


def _sentences(text: str) -> list[str]:
    return [text[start:end].strip() for start, end in sentence_spans(text)]


def test_sentences_keep_abbreviations_of_every_language() -> None:
    assert _sentences(
        "Es gibt 17, 18 bzw. 10 Buchstaben zwischen dem ersten und letzten. Manche Pakete, "
        "z. B. Debian-Pakete, sind u. a. Werkzeuge wie ggf. Dateien mit Nr. 5 usw. Das ist alles."
    ) == [
        "Es gibt 17, 18 bzw. 10 Buchstaben zwischen dem ersten und letzten.",
        "Manche Pakete, z. B. Debian-Pakete, sind u. a. Werkzeuge wie ggf. Dateien mit Nr. 5 "
        "usw. Das ist alles.",
    ]
    assert _sentences(
        "Regionen ska t.ex. Stockholm och dvs. Region Skåne medverka enligt 18 kap. 2 § lagen. "
        "Kaupunki säästää n. 5 milj. euroa eli esim. KELAn osuuden vuodessa. Next one."
    ) == [
        "Regionen ska t.ex. Stockholm och dvs. Region Skåne medverka enligt 18 kap. 2 § lagen.",
        "Kaupunki säästää n. 5 milj. euroa eli esim. KELAn osuuden vuodessa.",
        "Next one.",
    ]


def test_text_only_table_row_is_one_unit() -> None:
    row = (
        "Protokollinformationen von $unit vom letzten Boot-Vorgang anzeigen. Im Stil von "
        'tail -f | "journalctl -b -u $unit -f"'
    )
    assert _sentences(row) == [row]


def test_cleaning_keeps_lists_tables_and_compound_dashes() -> None:
    page = clean_page(
        "Region Stockholms forsknings-\noch utvecklingsstrategi gäller alla verk-\n"
        "samheter i regionen.\n• första punkten\n• andra punkten\n"
        "Liikevaihto 75 754 77 501 77 501\nHenkilöstökulut -2 245 -2 320 -2 320\n"
    )
    lines = page.text.split("\n")
    assert lines[0] == (
        "Region Stockholms forsknings- och utvecklingsstrategi gäller alla verksamheter i regionen."
    )
    assert lines[1:3] == ["• första punkten", "• andra punkten"]
    assert lines[3:] == ["Liikevaihto 75 754 77 501 77 501", "Henkilöstökulut -2 245 -2 320 -2 320"]


def test_a_name_compound_broken_at_its_dash_keeps_the_dash_and_no_space() -> None:
    # "Lahti-" / "Pisteellä" was read as "Lahti- Pisteellä": the name was cut in two and a
    # follow-up naming "Lahti-Pisteellä" found no sentence that names it.
    page = clean_page(
        "• Satama- ja veneasiakkaiden sähköistä palvelua edistetty. Kuntalaisten \n\n"
        "Timmi-tilavarausasiointia liikuntapalveluiden osalta kehitetty. Lahti-\n\n"
        "Pisteellä on toteutettu lähes 17 000 palvelutapahtumaa.\n"
    )
    assert "Lahti-Pisteellä on toteutettu" in page.text
