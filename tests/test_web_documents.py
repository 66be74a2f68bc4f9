"""The documents library over HTTP on a real server: the list as each token may see it,
uploads by the admin group answerable at once (no restart), per-file errors, delete, 403 for
everyone else, and asking within chosen documents; the same in the chat's library panel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client
from test_web_api import running_server, sse_events

from assistant.core import Assistant
from assistant.schema import Answer
from assistant.settings import Settings
from assistant.web.server import create_app

TOKENS = {"tok-admin": ["admin"], "tok-staff": ["staff"], "tok-hr": ["hr"]}
ADMIN = {"Authorization": "Bearer tok-admin"}
STAFF = {"Authorization": "Bearer tok-staff"}
HR = {"Authorization": "Bearer tok-hr"}
PARKING = (
    "Parkeringsregler för Kontor Norrsken\n\n"
    "Personalen parkerar på plan minus två i garaget under Kontor Norrsken. "
    "Besökare får parkera högst tre timmar på gatan utanför entrén.\n"
)
CANTEEN = (
    "Personalrestaurangen Solgläntan\n\n"
    "Restaurangen Solgläntan serverar lunch mellan klockan 11 och 13 varje vardag. "
    "Veckans vegetariska rätt kostar 85 kronor.\n"
)
PARKING_QUESTION = "Var parkerar personalen vid Kontor Norrsken?"


def data_and_docs(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path, name: str
) -> tuple[Path, Path]:
    """An empty data dir holding the converted model, and a folder for documents."""
    data = tmp_path_factory.mktemp(name) / "data"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    docs = data.parent / "docs"
    docs.mkdir()
    return data, docs


@pytest.fixture(scope="module")
def library_dirs(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> tuple[Path, Path]:
    return data_and_docs(tmp_path_factory, models_dir, "library")


@pytest.fixture(scope="module")
def library_base(library_dirs: tuple[Path, Path]) -> Iterator[str]:
    data, docs = library_dirs
    (docs / "matsal.txt").write_text(CANTEEN, encoding="utf-8")
    settings = Settings(data_dir=data, api_tokens=TOKENS)
    assistant = Assistant(settings)
    assert assistant.ingest([docs]).ok
    with running_server(create_app(settings, assistant)) as url:
        yield url


def documents(base: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = httpx.get(f"{base}/api/documents", headers=headers)
    assert response.status_code == 200
    return list(response.json()["documents"])


def ask(base: str, headers: dict[str, str], **body: Any) -> Answer:
    response = httpx.post(f"{base}/api/ask", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return Answer.model_validate(response.json())


def test_documents_are_listed_with_title_language_and_pages(library_base: str) -> None:
    (canteen,) = documents(library_base, STAFF)
    assert canteen["id"].endswith("matsal.txt") and canteen["language"] == "sv"
    assert canteen["title"] and canteen["chunks"] >= 1 and canteen["modified"]
    assert "pages" in canteen and canteen["groups"] == []
    assert httpx.get(f"{library_base}/api/documents").status_code == 401


def test_only_admins_change_the_library(library_base: str) -> None:
    files = {"files": ("x.txt", PARKING.encode(), "text/plain")}
    upload = httpx.post(f"{library_base}/api/documents", files=files, headers=STAFF)
    assert upload.status_code == 403 and upload.json()["error"]["code"] == "forbidden"
    doc_id = documents(library_base, STAFF)[0]["id"]
    removed = httpx.delete(f"{library_base}/api/documents/{doc_id}", headers=STAFF)
    assert removed.status_code == 403
    assert len(documents(library_base, STAFF)) == 1


def test_an_upload_is_answerable_at_once_and_can_be_deleted(library_base: str) -> None:
    files = [
        ("files", ("parkering.txt", PARKING.encode(), "text/plain")),
        ("files", ("program.exe", b"MZ\x00\x00", "application/octet-stream")),
        ("files", ("tom.txt", b"   \n\n", "text/plain")),
    ]
    response = httpx.post(f"{library_base}/api/documents", files=files, headers=ADMIN, timeout=120)
    assert response.status_code == 200, response.text
    results = {r["file"]: r for r in response.json()["documents"]}
    assert results["parkering.txt"]["id"] and not results["parkering.txt"]["error"]
    assert "unsupported" in results["program.exe"]["error"]
    assert results["tom.txt"]["error"] and results["tom.txt"]["id"] is None
    parking = results["parkering.txt"]["id"]
    assert parking in {d["id"] for d in documents(library_base, STAFF)}

    answer = ask(library_base, STAFF, question=PARKING_QUESTION)
    # Citations name the file; the id (a path) is what filters and DELETE take.
    assert not answer.refused and {c.doc for c in answer.citations} == {"parkering.txt"}
    # Asking within another document leaves the new one out.
    canteen = next(d["id"] for d in documents(library_base, STAFF) if d["id"] != parking)
    within = ask(library_base, STAFF, question=PARKING_QUESTION, filters={"doc_ids": [canteen]})
    assert "parkering.txt" not in {p.doc for p in within.retrieved}

    removed = httpx.delete(f"{library_base}/api/documents/{parking}", headers=ADMIN)
    assert removed.status_code == 200 and removed.json() == {"deleted": parking}
    assert parking not in {d["id"] for d in documents(library_base, STAFF)}
    after = ask(library_base, STAFF, question=PARKING_QUESTION)
    assert "parkering.txt" not in {p.doc for p in after.retrieved}
    gone = httpx.delete(f"{library_base}/api/documents/{parking}", headers=ADMIN)
    assert gone.status_code == 404


def test_uploads_with_groups_are_seen_by_those_groups_only(library_base: str) -> None:
    files = {"files": ("hr-parkering.txt", PARKING.replace("Norrsken", "Polstjärnan").encode())}
    response = httpx.post(
        f"{library_base}/api/documents",
        files=files,
        data={"groups": "hr"},
        headers=ADMIN,
        timeout=120,
    )
    doc_id = response.json()["documents"][0]["id"]
    assert doc_id in {d["id"] for d in documents(library_base, HR)}
    assert doc_id not in {d["id"] for d in documents(library_base, STAFF)}
    assert httpx.delete(f"{library_base}/api/documents/{doc_id}", headers=ADMIN).status_code == 200


def test_the_chat_asks_within_the_chosen_documents(library_base: str) -> None:
    options: dict[str, Any] = {"verbose": False, "analytics_enabled": False}
    chat = Client(f"{library_base}/", headers=STAFF, download_files=False, **options)
    canteen = documents(library_base, STAFF)[0]["id"]
    question = "När serverar Solgläntan lunch?"
    # /ask takes the question, the open conversation and the documents to ask within.
    _, sources, retrieved, *_ = chat.predict(question, "", [canteen], api_name="/ask")
    assert "matsal.txt" in retrieved
    _, sources, retrieved, *_ = chat.predict(question, "", ["no-such-doc"], api_name="/ask")
    assert "matsal.txt" not in sources + retrieved


def reindex(base: str, headers: dict[str, str], **body: Any) -> list[tuple[str, Any]]:
    """The events of a re-index: ("progress", {...}) ..., then ("summary", {...})."""
    with httpx.stream(
        "POST", f"{base}/api/documents/reindex", json=body, headers=headers, timeout=120
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        return [(event, json.loads(data)) for event, data in sse_events(response)]


def test_admins_reindex_with_progress_and_a_summary_per_file(
    library_base: str, library_dirs: tuple[Path, Path]
) -> None:
    # Not an admin: 403 before anything is done; no token: 401.
    refused = httpx.post(f"{library_base}/api/documents/reindex", json={}, headers=STAFF)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert httpx.post(f"{library_base}/api/documents/reindex", json={}).status_code == 401

    # A document whose file has gone since it was uploaded, and one changed on disk.
    files = {"files": ("parkering.txt", PARKING.encode(), "text/plain")}
    upload = httpx.post(f"{library_base}/api/documents", files=files, headers=ADMIN, timeout=120)
    parking = upload.json()["documents"][0]["id"]
    (library_dirs[0] / "library" / "parkering.txt").unlink()
    canteen = library_dirs[1] / "matsal.txt"
    canteen.write_text(CANTEEN.replace("11 och 13", "10 och 14"), "utf-8")
    canteen_id = next(d["id"] for d in documents(library_base, STAFF) if d["id"] != parking)

    events = reindex(library_base, ADMIN)  # no ids: every indexed document
    progress = [data for event, data in events if event == "progress"]
    assert [(p["done"], p["total"]) for p in progress] == [(0, 1), (1, 1)]
    assert progress[0]["file"] == "matsal.txt"
    (kind, summary), *_ = events[len(progress) :]
    assert kind == "summary" and summary["total"] == 2
    assert summary["updated"] == [canteen_id] and summary["unchanged"] == []
    assert summary["failed"] == [{"file": parking, "error": "no such file or directory"}]
    answer = ask(library_base, STAFF, question="När serverar Solgläntan lunch?")
    assert any("10 och 14" in p.text for p in answer.retrieved)  # the changed text is found

    # The chosen documents only; an unknown id is a failure of its own.
    events = reindex(library_base, ADMIN, ids=[canteen_id, "no/such.txt"])
    summary = events[-1][1]
    assert (summary["total"], summary["unchanged"]) == (2, [canteen_id])
    assert summary["failed"] == [{"file": "no/such.txt", "error": "no such document"}]
    assert httpx.delete(f"{library_base}/api/documents/{parking}", headers=ADMIN).status_code == 200
