"""An encoder whose embedding has fewer rows than its tokenizer has tokens is refused at load time."""

from __future__ import annotations

from typer.testing import CliRunner

from gplinker.cli import app
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl


def encoder_dir_with_a_bigger_vocab(tmp_path, rows: int):
    """A tiny BERT saved with save_pretrained whose vocab.txt lists every character, more than `rows`."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    chars = sorted({c for t, _ in NER_SENTENCES for c in t})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + chars
    assert len(vocab) > rows
    d = tmp_path / "encoder"
    d.mkdir()
    (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertModel(BertConfig(vocab_size=rows, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(d)
    BertTokenizerFast.from_pretrained(str(d)).save_pretrained(d)
    return d, len(vocab)


def test_train_refuses_a_tokenizer_larger_than_the_embedding(tmp_path):
    encoder, tokens = encoder_dir_with_a_bigger_vocab(tmp_path, rows=20)
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    sets = tiny_overrides(train, None, tmp_path / "run", "train.max_steps=2", f"model.encoder={encoder}")
    result = CliRunner().invoke(app, ["train", str(config), *set_args(sets)])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert f"the tokenizer has {tokens} tokens but the encoder's embedding has only 20 rows" in message
    assert "Traceback" not in result.output and not (tmp_path / "run" / "best").exists()


def test_predictor_refuses_a_model_dir_whose_tokenizer_outgrew_the_embedding(tiny_model_dir, tmp_path):
    import shutil

    from gplinker.manifest import write_manifest
    from gplinker.predict import Predictor

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    tokenizer = Predictor.from_pretrained(model_dir, device="cpu").tokenizer
    rows = len(tokenizer)
    tokenizer.add_tokens(["新词一", "新词二"])  # two tokens with no embedding row
    tokenizer.save_pretrained(str(model_dir))
    write_manifest(model_dir)  # the dir's files are as its owner meant them; the mismatch is in what they hold
    result = CliRunner().invoke(app, ["predict", str(model_dir), "-"], input='{"text": "北京"}\n')
    assert result.exit_code == 2, result.output
    assert f"the tokenizer has {rows + 2} tokens but the encoder's embedding has only {rows} rows" in \
        " ".join(result.output.split())
