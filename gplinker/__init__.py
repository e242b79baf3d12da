"""gplinker: GPLinker information extraction (NER, relation triples, events) with Efficient GlobalPointer heads.

The public API, imported lazily so that `import gplinker` does not load torch:

    from gplinker import Pipeline
    nlp = Pipeline.from_pretrained("runs/cluener/best")
    nlp("张伟在北京大学读书。")
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gplinker.config import Config, DataConfig, ModelConfig, ScratchConfig, TrainConfig, load_config
    from gplinker.errors import ConfigError, DataError, GPLinkerError
    from gplinker.pipeline import Pipeline
    from gplinker.predict import Predictor
    from gplinker.tasks.event import EventTask
    from gplinker.tasks.ner import NerTask
    from gplinker.tasks.relation import RelationTask

_WHERE = {
    "Pipeline": "gplinker.pipeline", "Predictor": "gplinker.predict",
    "NerTask": "gplinker.tasks.ner", "RelationTask": "gplinker.tasks.relation", "EventTask": "gplinker.tasks.event",
    "Config": "gplinker.config", "DataConfig": "gplinker.config", "ModelConfig": "gplinker.config",
    "ScratchConfig": "gplinker.config", "TrainConfig": "gplinker.config", "load_config": "gplinker.config",
    "GPLinkerError": "gplinker.errors", "ConfigError": "gplinker.errors", "DataError": "gplinker.errors",
}

__all__ = [
    "Config", "ConfigError", "DataConfig", "DataError", "EventTask", "GPLinkerError", "ModelConfig", "NerTask",
    "Pipeline", "Predictor", "RelationTask", "ScratchConfig", "TrainConfig", "load_config",
]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'gplinker' has no attribute {name!r}")
    return getattr(import_module(_WHERE[name]), name)
