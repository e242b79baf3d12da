"""The light encoders (dgcnn, bilstm): padding invariance, the gate and LSTM formulas, training, model dirs, ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from gplinker import Pipeline
from gplinker.cli import app
from gplinker.commands.evaluate import evaluate_dir
from gplinker.config import LightConfig, load_config
from gplinker.data.schema import Schema
from gplinker.errors import ConfigError
from gplinker.model_format import MODEL_FORMAT
from gplinker.modeling import light
from gplinker.modeling.encoders import load_tokenizer, scratch_tokenizer
from gplinker.modeling.light import BiLstm, GatedDilatedConv, LightEncoder, light_encoder, reverse_within_lengths
from gplinker.modeling.model import GPLinkerModel
from gplinker.tasks.ner import NerTask
from tests.conftest import NER_SENTENCES, set_args, spans_record, write_jsonl

TEXTS = [t for t, _ in NER_SENTENCES]
LIGHT = ["model.light.embedding_dim=16", "model.light.hidden_size=32", "model.light.dilations=[1,2,1]",
         "model.light.layers=2", "model.head_size=16", "data.max_length=32", "data.stride=8", "train.batch_size=4",
         "train.lr=1e-2", "train.log_every=1", "train.warmup_ratio=0.0"]
runner = CliRunner()


def tiny_encoder(name: str, seed: int = 0, **sizes: object) -> tuple[LightEncoder, object]:
    torch.manual_seed(seed)
    tokenizer = scratch_tokenizer(TEXTS)
    cfg = LightConfig(**{"embedding_dim": 16, "hidden_size": 24, "dilations": [1, 2, 5], "layers": 2, **sizes})
    encoder, _ = light_encoder(name, cfg, tokenizer)
    return encoder.eval(), tokenizer


@pytest.mark.parametrize("name", ["dgcnn", "bilstm"])
@pytest.mark.parametrize("buckets", [0, 53])
def test_a_text_alone_and_in_a_padded_batch_gets_the_same_hidden_states(name, buckets):
    encoder, tokenizer = tiny_encoder(name, bigram_buckets=buckets)
    texts = [TEXTS[4], TEXTS[1], TEXTS[5] + TEXTS[7]]  # lengths 17, 9, 18 characters: every row but one padded
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()
    with torch.no_grad():
        batched = encoder(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        for k, text in enumerate(texts):
            alone = tokenizer([text], return_tensors="pt")
            hidden = encoder(alone["input_ids"], alone["attention_mask"]).last_hidden_state[0]  # (n, D)
            assert hidden.shape == (alone["input_ids"].shape[1], 24)
            assert torch.allclose(hidden, batched[k, : hidden.shape[0]], atol=1e-5)


def test_padding_with_any_token_id_changes_no_real_position():
    """Masked means masked: the ids under the padding do not matter (not only the pad id's zero embedding)."""
    for name, buckets in (("dgcnn", 0), ("bilstm", 0), ("dgcnn", 53), ("bilstm", 53)):
        encoder, tokenizer = tiny_encoder(name, bigram_buckets=buckets)
        ids = tokenizer([TEXTS[0]], return_tensors="pt")["input_ids"]
        n = ids.shape[1]
        mask = torch.cat([torch.ones(1, n), torch.zeros(1, 7)], dim=1).long()
        with torch.no_grad():
            a = encoder(torch.cat([ids, torch.full((1, 7), 9)], dim=1), mask).last_hidden_state[0, :n]
            b = encoder(torch.cat([ids, torch.randint(5, 30, (1, 7))], dim=1), mask).last_hidden_state[0, :n]
        assert torch.allclose(a, b, atol=1e-6), (name, buckets)


def test_bigram_rows_hash_each_character_with_the_next_one_and_the_pad_id_past_the_end():
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 3, 8, 8, 8]])  # row 1: padded with a non-pad id
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]])
    rows = light.bigram_rows(ids, mask, vocab_size=10, buckets=37, pad_id=0)
    expected = [[(2 * 10 + 7) % 37, (7 * 10 + 9) % 37, (9 * 10 + 3) % 37, 3 * 10 % 37],  # (c_t, c_t+1), then pad
                [(2 * 10 + 5) % 37, (5 * 10 + 3) % 37, 3 * 10 % 37]]
    assert rows[0, :4].tolist() == expected[0] and rows[1, :3].tolist() == expected[1]


def test_bigrams_are_concatenated_with_the_character_embeddings():
    encoder, tokenizer = tiny_encoder("dgcnn", bigram_buckets=53)
    assert encoder.bigrams is not None and encoder.bigrams.weight.shape == (53, 16)
    assert isinstance(encoder.project, nn.Linear) and encoder.project.in_features == 32
    ids = tokenizer([TEXTS[0]], return_tensors="pt")
    base = encoder(ids["input_ids"], ids["attention_mask"]).last_hidden_state
    with torch.no_grad():
        rows = light.bigram_rows(ids["input_ids"], ids["attention_mask"], len(tokenizer), 53, tokenizer.pad_token_id)
        row = int(rows[0, 3])
        encoder.bigrams.weight[row] += 1.0  # changing one bigram's row changes the output where it is used
    changed = encoder(ids["input_ids"], ids["attention_mask"]).last_hidden_state
    assert not torch.allclose(base, changed)


def test_gated_dilated_conv_is_the_lic2019_formula():
    torch.manual_seed(1)
    block = GatedDilatedConv(dim=4, dilation=2, dropout=0.0).eval()
    x = torch.randn(1, 9, 4)
    mask = torch.ones(1, 9, 1)
    y = block(x, mask)
    w, bias = block.conv.weight, block.conv.bias  # (2D, D, 3), (2D,)
    for t in range(9):  # y_t = x_t (1 - σ(g_t)) + h_t σ(g_t), (h_t, g_t) = Σ_k W_k x_{t + 2(k-1)} + b
        out = bias.clone()
        for k in range(3):
            s = t + 2 * (k - 1)
            if 0 <= s < 9:
                out = out + w[:, :, k] @ x[0, s]
        h, g = out[:4], out[4:]
        expected = x[0, t] * (1 - torch.sigmoid(g)) + h * torch.sigmoid(g)
        assert torch.allclose(y[0, t], expected, atol=1e-6)


def test_bilstm_equals_a_packed_bidirectional_lstm():
    torch.manual_seed(2)
    body = BiLstm(dim=8, layers=2, dropout=0.0).eval()
    packed = nn.LSTM(8, 4, num_layers=2, bidirectional=True, batch_first=True)
    with torch.no_grad():
        for k in range(2):
            for direction, lstm in (("", body.forward_lstms[k]), ("_reverse", body.backward_lstms[k])):
                for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(packed, f"{kind}_l{k}{direction}").copy_(getattr(lstm, f"{kind}_l0"))
    lengths = torch.tensor([6, 3, 1])
    x = torch.randn(3, 6, 8)
    mask = (torch.arange(6)[None] < lengths[:, None]).long()
    ours = body(x, mask)
    seq = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    theirs, _ = nn.utils.rnn.pad_packed_sequence(packed(seq)[0], batch_first=True)
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(ours[b, :n], theirs[b, :n], atol=1e-5)


def test_reverse_within_lengths_leaves_the_padding_in_place():
    x = torch.arange(10.0).view(2, 5, 1)
    out = reverse_within_lengths(x, torch.tensor([5, 3]))[..., 0]
    assert out.tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]


def test_light_config_is_checked():
    with pytest.raises(ConfigError, match="even for bilstm"):
        load_config(None, ["model.encoder=bilstm", "model.light.hidden_size=33"])
    with pytest.raises(ConfigError, match="dilations"):
        load_config(None, ["model.encoder=dgcnn", "model.light.dilations=[1,0]"])
    with pytest.raises(ConfigError, match="bigram_buckets must be 0"):
        load_config(None, ["model.encoder=dgcnn", "model.light.bigram_buckets=-1"])
    with pytest.raises(ConfigError, match=r"model.light.dilations\[1\]' must be int"):
        load_config(None, ["model.encoder=dgcnn", "model.light.dilations=[1,x]"])
    assert load_config(None, ["model.encoder=dgcnn", "model.light.dilations=[1, 3]"]).model.light.dilations == [1, 3]


@pytest.fixture(scope="module", params=["dgcnn", "bilstm", "dgcnn+bigrams"])
def trained(request, tmp_path_factory) -> dict:
    """A light encoder trained on the synthetic sentences until it has learned them."""
    name, _, bigrams = request.param.partition("+")
    tmp = tmp_path_factory.mktemp(name)
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    train = write_jsonl(tmp / "train.jsonl", rows)
    config = write_jsonl(tmp / "c.yaml", ["task: ner", f"model: {{encoder: {name}}}"])
    g = torch.Generator().manual_seed(0)  # synthetic 16-dim vectors for the characters of the first sentence
    vectors = write_jsonl(tmp / "vectors.txt", [" ".join([ch, *(f"{x:.4f}" for x in torch.randn(16, generator=g))])
                                                for ch in sorted(set(TEXTS[0]))])
    sets = LIGHT + [f"data.train={train}", f"data.dev={train}", f"train.output_dir={tmp / 'run'}",
                    "train.max_steps=160", "train.eval_every=160",
                    "model.light.dropout=0.0", f"model.light.embeddings={vectors}",
                    f"model.light.bigram_buckets={97 if bigrams else 0}"]
    result = runner.invoke(app, ["train", str(config), *set_args(sets)])
    assert result.exit_code == 0, result.output
    return {"name": name, "model": tmp / "run" / "best", "train": train, "tmp": tmp,
            "output": " ".join(result.output.split()), "vectors": vectors, "bigrams": 97 if bigrams else 0}


def test_training_reports_the_embeddings_coverage(trained):
    characters = len({ch for t in TEXTS for ch in t})
    assert f"{trained['vectors']}: vectors for {len(set(TEXTS[0]))} of {characters} characters" in trained["output"]


def test_init_from_a_light_model_refuses_other_light_sizes_and_keeps_the_same_ones(trained):
    tmp = trained["tmp"]
    config = write_jsonl(tmp / "warm.yaml", ["task: ner", f"model: {{encoder: {trained['name']}}}"])
    same = LIGHT + [f"data.train={trained['train']}", "train.max_steps=0", "model.light.dropout=0.0",
                    f"model.light.bigram_buckets={trained['bigrams']}"]
    result = runner.invoke(app, ["train", str(config), "--init-from", str(trained["model"]),
                                 *set_args(same + [f"train.output_dir={tmp / 'warm-same'}"])])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["train", str(config), "--init-from", str(trained["model"]),
                                 *set_args(same + [f"train.output_dir={tmp / 'warm-wide'}",
                                                   "model.light.hidden_size=48"])])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in said
    assert "model.light.hidden_size: config 48, model dir 32" in said and not (tmp / "warm-wide" / "last").exists()


def test_a_light_encoder_learns_the_training_sentences(trained):
    result = evaluate_dir(trained["model"], trained["train"])
    assert result.scores.main == 1.0, result.scores.metrics


@pytest.mark.parametrize(("name", "buckets"), [("dgcnn", 0), ("bilstm", 0), ("bilstm", 53)])
def test_a_saved_light_model_reloads_to_the_same_logits(name, buckets, tmp_path: Path):
    encoder, tokenizer = tiny_encoder(name, seed=3, bigram_buckets=buckets)
    model = GPLinkerModel(encoder, NerTask(Schema(task="ner", entity_types=["loc", "person"])).heads(), "egp", 8)
    model.eval().save(tmp_path, {"task": "ner", "format_version": MODEL_FORMAT})
    tokenizer.save_pretrained(str(tmp_path))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == f"gplinker-{name}" and config["hidden_size"] == 24
    assert config["bigram_buckets"] == buckets
    loaded, section = GPLinkerModel.load(tmp_path)
    assert section["task"] == "ner" and type(loaded.encoder.body) is type(encoder.body)
    ids = torch.randint(5, len(tokenizer), (2, 11))
    mask = torch.ones(2, 11, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        assert torch.equal(model(ids, mask).logits["entities"], loaded.eval()(ids, mask).logits["entities"])
    assert load_tokenizer(str(tmp_path), config["model_type"]).get_vocab() == tokenizer.get_vocab()


def test_pipeline_and_predict_find_the_trained_entities(trained, tmp_path: Path):
    pipeline = Pipeline.from_pretrained(trained["model"])
    found = {(e["text"], e["type"]) for e in pipeline(TEXTS[1])["entities"]}
    assert found == {("李娜", "person"), ("上海", "loc")}
    src = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["predict", str(trained["model"]), str(src), "-o", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {(e["text"], e["type"]) for e in records[1]["entities"]} == found


def test_onnx_export_of_a_light_model_passes_its_parity_check(trained):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from gplinker.onnx_runtime import OnnxLogits
    from gplinker.predict import Predictor

    out = trained["tmp"] / "onnx"
    result = runner.invoke(app, ["export", str(trained["model"]), "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    assert "decoded items differ on 0 text(s)" in " ".join(result.output.split())
    reference = Predictor.from_pretrained(trained["model"], device="cpu", runtime="torch")
    ids = torch.randint(5, len(reference.tokenizer), (3, 21))
    mask = torch.ones(3, 21, dtype=torch.long)
    mask[1, 13:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = reference.pad_id
    with torch.inference_mode():
        a = reference.logits({"input_ids": ids, "attention_mask": mask})["entities"]
    b = OnnxLogits.load(out)(ids, mask)["entities"]
    live = a > -1e11
    assert torch.equal(live, b > -1e11)
    assert (a - b).abs()[live].max() < 1e-4
    strip = lambda r: [{k: v for k, v in e.items() if k != "score"} for e in r["entities"]]  # noqa: E731
    onnx_records = Pipeline.from_pretrained(out)(TEXTS)
    assert [strip(r) for r in onnx_records] == [strip(r) for r in Pipeline.from_pretrained(trained["model"])(TEXTS)]


def test_check_with_a_light_config_uses_the_character_vocabulary_of_the_training_data(tmp_path: Path):
    from gplinker.commands.check import settings_from_config

    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    for light_count, present in ((1, True), (2, False)):  # 武 occurs once in the sentences
        cfg = load_config(None, ["model.encoder=dgcnn", f"data.train={train}", "data.max_length=auto",
                                 f"model.light.min_char_count={light_count}", "model.scratch.min_char_count=9"])
        settings = settings_from_config(cfg)
        assert ("武" in settings.tokenizer.get_vocab()) is present
        assert settings.max_length == max(len(t) for t in TEXTS) + 2  # the longest text + [CLS], [SEP]
