"""Tiny random-weight model dirs of every task, whose threshold makes a few percent of the live cells positive.

Built in well under a second (no training), so API tests can compare a server's answers with
`Pipeline` / `gplinker predict` on all three tasks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gplinker.config import ScratchConfig
from gplinker.data.examples import TRIGGER_ROLE
from gplinker.data.schema import Schema
from gplinker.modeling.encoders import scratch_encoder, scratch_tokenizer
from gplinker.modeling.model import GPLinkerModel
from gplinker.predict import Predictor
from gplinker.tasks import build_task
from tests.conftest import NER_SENTENCES

TEXTS = [t for t, _ in NER_SENTENCES]
LONG = "".join(TEXTS) * 3  # ≈ 200 characters: many 32-token windows
MAX_LENGTH, STRIDE = 32, 8

SCHEMAS = {
    "ner": Schema(task="ner", entity_types=["loc", "org", "person"]),
    "relation": Schema(task="relation", entity_types=["人物", "地点", "学校"], predicates=["出生地", "毕业院校"],
                       object_slots={"出生地": ["@value"], "毕业院校": ["@value"]},
                       subject_types={"出生地": "人物", "毕业院校": "人物"},
                       object_types={"出生地": {"@value": "地点"}, "毕业院校": {"@value": "学校"}}),
    "event": Schema(task="event", event_roles=[("出行", TRIGGER_ROLE), ("出行", "出行者"), ("出行", "目的地"),
                                               ("任职", TRIGGER_ROLE), ("任职", "任职者")]),
}


# share of live cells above the threshold: a relation needs entity, head and tail cells to agree
POSITIVE_SHARE = {"ner": 0.03, "relation": 0.15, "event": 0.03}


def random_model_dir(directory: Path, task_name: str, seed: int = 0) -> Path:
    """A model dir of `task_name` with random weights; the threshold leaves POSITIVE_SHARE of live cells above it."""
    torch.manual_seed(seed)
    texts = TEXTS + [LONG]
    tokenizer = scratch_tokenizer(texts)
    encoder = scratch_encoder(ScratchConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                            max_position=64, dropout=0.0), len(tokenizer))
    task = build_task(task_name, SCHEMAS[task_name])
    model = GPLinkerModel(encoder, task.heads(), "egp", 16).eval()
    section = {"task": task_name, "schema": task.schema.to_dict(), "format": "auto", "max_length": MAX_LENGTH,
               "stride": STRIDE, "threshold": 0.0, "char_level": False}
    predictor = Predictor(model=model, tokenizer=tokenizer, task=task, max_length=MAX_LENGTH, stride=STRIDE)
    live = []
    with torch.inference_mode():
        for w in predictor.encoder.encode(texts):
            logits = predictor.logits({"input_ids": torch.tensor([w.input_ids]),
                                       "attention_mask": torch.ones(1, len(w), dtype=torch.long)})
            live += [x[x > -1e11] for x in logits.values()]
    values = torch.cat(live).sort().values
    section["threshold"] = float(values[int((1 - POSITIVE_SHARE[task_name]) * len(values))])
    model.save(directory, section)
    tokenizer.save_pretrained(str(directory))
    return directory
