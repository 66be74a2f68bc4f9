"""Loaders on real files of each format, built here: a PDF (hand-written PDF operators), a
Word file (python-docx), HTML and Markdown; cleaning of PDF-extracted text."""

from __future__ import annotations

from pathlib import Path

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
    assert {c.metadata["page"] for c in chunks} == {1, 2}
    assert any(c.metadata["section"] == "2. Staff" for c in chunks)


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
