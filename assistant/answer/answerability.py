"""Refusal as a calibrated decision: the probability that the retrieved evidence answers the
question, from several signals, by a logistic model fitted on the dev split of the eval set
(`python -m evals.calibrate`), its parameters in a data file keyed to the embedder's model id.

Why several signals: multilingual-e5 cosines are compressed (questions the documents cannot
answer still find sentences at 0.82-0.90), so no absolute score separates answerable from
unanswerable questions. What does separate them is whether one candidate clearly stands out
from the rest (contrast), whether the question's words, names and numbers are in the evidence
(only meaningful in the same language), and whether the dense and lexical rankings agree.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from assistant.errors import ConfigError

FEATURES = (
    "similarity",
    "contrast",
    "coverage",
    "cross_language",
    "names_found",
    "lexical_agreement",
    "margin",
    "unknown_words",
    "global_contrast",
)


# The direction each signal can only push the answerability in (+1 up, -1 down, 0 either):
# more support never makes an answer less likely. Fitting within these signs keeps a small
# dev split from learning a weight with the wrong sign from a few odd items.
SIGNS = {
    "similarity": 1,
    "contrast": 1,
    "coverage": 1,
    "cross_language": 0,
    "names_found": 1,
    "lexical_agreement": 1,
    "margin": 1,
    "unknown_words": -1,
    "global_contrast": 1,
}


@dataclass(frozen=True)
class Signals:
    similarity: float  # cosine of the best candidate sentence
    contrast: float  # best cosine minus the median cosine of all candidates
    coverage: float  # share of question words in the best candidate (0 across languages)
    cross_language: float  # 1.0 when the best candidate's document is in another language
    names_found: float  # share of the question's names found in the evidence passages
    lexical_agreement: float  # 1.0 when BM25 also ranked the best passage in its top 5
    margin: float  # best candidate's score minus the second best's
    unknown_words: float  # share of question words found nowhere in the documents (same language)
    global_contrast: float  # best sentence of the collection vs its next 20, in their std units

    def vector(self) -> list[float]:
        return [float(getattr(self, name)) for name in FEATURES]


@dataclass(frozen=True)
class Calibration:
    model_id: str
    weights: dict[str, float]
    bias: float
    # Standardisation fitted with the weights (the features differ in scale).
    means: dict[str, float]
    scales: dict[str, float]
    fitted_on: str = ""

    def probability(self, signals: Signals) -> float:
        z = self.bias
        for name, value in zip(FEATURES, signals.vector(), strict=True):
            scale = self.scales.get(name) or 1.0
            z += self.weights.get(name, 0.0) * (value - self.means.get(name, 0.0)) / scale
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")


def calibration_path(model_id: str) -> Path:
    """Where the shipped calibration of an embedding model lives (package data)."""
    return Path(str(resources.files("assistant.answer").joinpath("calibration"))) / (
        f"{_slug(model_id)}.json"
    )


@cache
def load_calibration(model_id: str) -> Calibration | None:
    """The fitted calibration for this embedder, or None when none was fitted for it (then
    the backend falls back to a plain similarity rule and says so in the answer's score)."""
    path = calibration_path(model_id)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Calibration(**data)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"answerability calibration {path} is unreadable: {exc}") from exc


def fallback_probability(signals: Signals) -> float:
    """For an embedder without a calibration: contrast and similarity on e5-like scales."""
    z = 12.0 * (signals.contrast - 0.06) + 6.0 * (signals.similarity - 0.84)
    return 1.0 / (1.0 + math.exp(-z))


def fit(
    rows: list[tuple[Signals, bool]], model_id: str, *, l2: float = 1.0, fitted_on: str = ""
) -> Calibration:
    """Logistic regression by projected gradient descent on standardised features,
    L2-regularised (the dev split is small, so the weights must stay modest) and with each
    weight kept to its signal's sign (SIGNS)."""
    import numpy as np

    x = np.array([s.vector() for s, _ in rows], dtype=np.float64)
    y = np.array([1.0 if label else 0.0 for _, label in rows])
    means = x.mean(axis=0)
    scales = x.std(axis=0)
    scales[scales < 1e-9] = 1.0
    z = (x - means) / scales
    w = np.zeros(z.shape[1])
    signs = np.array([SIGNS[name] for name in FEATURES], dtype=np.float64)
    b = 0.0
    n = len(y)
    for _ in range(5000):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        grad_w = z.T @ (p - y) / n + l2 * w / n
        grad_b = float(np.mean(p - y))
        w -= 0.5 * grad_w
        w = np.where(signs * w < 0, 0.0, w)
        b -= 0.5 * grad_b
    return Calibration(
        model_id=model_id,
        weights={name: round(float(v), 5) for name, v in zip(FEATURES, w, strict=True)},
        bias=round(b, 5),
        means={name: round(float(v), 6) for name, v in zip(FEATURES, means, strict=True)},
        scales={name: round(float(v), 6) for name, v in zip(FEATURES, scales, strict=True)},
        fitted_on=fitted_on,
    )
