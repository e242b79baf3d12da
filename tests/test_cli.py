"""CLI end to end on a tiny scratch encoder: train, eval, predict, check, resume, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from gplinker.cli import app
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl

runner = CliRunner()


def run(*args: str, input: str | None = None):
    result = runner.invoke(app, list(args), input=input)
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained until it fits the synthetic sentences (≈ 10 s on 2 cores)."""
    tmp = tmp_path_factory.mktemp("trained")
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    train = write_jsonl(tmp / "train.jsonl", rows)
    out = tmp / "run"
    cfg = write_jsonl(tmp / "c.yaml", ["task: ner"])
    result = run("train", str(cfg), *set_args(tiny_overrides(train, train, out, "train.max_steps=150",
                                                             "train.eval_every=50")))
    assert result.exit_code == 0, result.output
    return {"tmp": tmp, "train": train, "out": out, "rows": rows}


def test_train_overfits_and_best_dir_predicts_without_config(trained):
    metrics = json.loads((trained["out"] / "best" / "metrics.json").read_text())
    assert metrics["score"] == 1.0, metrics  # the tiny model learns 8 sentences exactly
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (trained["out"] / "best" / name).is_file()
    info = json.loads((trained["out"] / "run_info.json").read_text())
    assert info["config"]["train"]["max_steps"] == 150 and "torch" in info["versions"]


def test_eval_prints_table_and_writes_metrics_and_errors(trained, tmp_path):
    metrics, errors = tmp_path / "m.json", tmp_path / "e.jsonl"
    result = run("eval", str(trained["out"] / "best"), str(trained["train"]), "-o", str(metrics),
                 "--errors", str(errors))
    assert result.exit_code == 0, result.output
    scores = json.loads(metrics.read_text())
    assert scores["main"] == 1.0 and scores["metrics"]["cluener_f1"] == 1.0
    assert set(scores["per_label"]) == {"person", "loc", "org"}
    assert "person" in result.output and "span_f1" in result.output
    assert errors.read_text() == ""  # no false positive, no miss


def test_predict_one_line_per_input_line_in_order_with_errors(trained, tmp_path):
    texts = [t for t, _ in NER_SENTENCES]
    lines = [json.dumps({"id": k, "text": t}, ensure_ascii=False) for k, t in enumerate(texts)]
    lines.insert(2, "{broken")
    lines.insert(4, json.dumps({"txt": "x"}))
    lines.insert(5, json.dumps({"text": ""}))
    src = write_jsonl(tmp_path / "in.jsonl", lines)
    out = tmp_path / "out.jsonl"
    result = run("predict", str(trained["out"] / "best"), str(src), "-o", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(records) == len(lines)
    assert "error" in records[2] and f"{src}:3" in records[2]["error"]
    assert "missing field 'text'" in records[4]["error"]
    assert records[5] == {"text": "", "entities": []}
    good = [r for r in records if "error" not in r and r["text"]]
    assert [r["text"] for r in good] == texts
    gold = {r["text"]: {(e["start"], e["end"], e["type"]) for e in r["entities"]} for r in trained["rows"]}
    for r in good:
        assert {(e["start"], e["end"], e["type"]) for e in r["entities"]} == gold[r["text"]]
        assert all(r["text"][e["start"]:e["end"]] == e["text"] and 0.5 < e["score"] <= 1 for e in r["entities"])
    assert "2 with errors" in result.output


def test_predict_reads_stdin_and_handles_long_text(trained):
    text = "".join(t for t, _ in NER_SENTENCES) * 2  # far longer than one 32-token window
    result = run("predict", str(trained["out"] / "best"), "-", input=json.dumps({"text": text}, ensure_ascii=False))
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[0])
    found = {(e["text"], e["type"]) for e in record["entities"]}
    assert ("北京大学", "org") in found and ("成都", "loc") in found
    assert all(text[e["start"]:e["end"]] == e["text"] for e in record["entities"])
    assert max(e["end"] for e in record["entities"]) > len(text) // 2  # the last windows are read too


def test_predict_keeps_the_json_type_of_ids(trained, tmp_path):
    lines = [json.dumps({"id": 0, "text": NER_SENTENCES[0][0]}, ensure_ascii=False),
             json.dumps({"id": "0", "text": NER_SENTENCES[1][0]}, ensure_ascii=False),
             json.dumps({"text": NER_SENTENCES[2][0]}, ensure_ascii=False)]
    out, src = tmp_path / "out.jsonl", write_jsonl(tmp_path / "in.jsonl", lines)
    result = run("predict", str(trained["out"] / "best"), str(src), "-o", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert records[0]["id"] == 0 and records[1]["id"] == "0" and "id" not in records[2]


def test_predict_format_clue_writes_the_cluener_submission(trained, tmp_path):
    from tests.test_submission import cluener_gold, cluener_score

    gold = cluener_gold()  # the training sentences, in CLUENER form, ids 0..7
    src = write_jsonl(tmp_path / "test.json", [{"id": g["id"], "text": g["text"]} for g in gold])
    out = tmp_path / "cluener_predict.json"
    result = run("predict", str(trained["out"] / "best"), str(src), "-o", str(out), "--format", "clue")
    assert result.exit_code == 0, result.output
    submission = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert cluener_score(gold, submission) == 1.0  # the model fits its training sentences exactly
    assert all(set(line) == {"id", "label"} and isinstance(line["id"], int) for line in submission)


def test_predict_submission_stops_at_a_line_it_cannot_hold(trained, tmp_path):
    best = str(trained["out"] / "best")
    bad = write_jsonl(tmp_path / "bad.jsonl", [json.dumps({"id": 1, "text": "李娜去了上海。"}, ensure_ascii=False),
                                               "{broken"])
    result = run("predict", best, str(bad), "--format", "clue")
    said = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2 and f"{bad}:2: malformed JSON" in said and "--format records" in said
    no_id = write_jsonl(tmp_path / "no_id.jsonl", [json.dumps({"text": "李娜去了上海。"}, ensure_ascii=False)])
    result = run("predict", best, str(no_id), "--format", "clue")
    assert result.exit_code == 2 and f"{no_id}:1: no 'id'" in " ".join(result.output.split())


def test_predict_format_of_another_task_fails_before_reading_input(trained, tmp_path):
    result = run("predict", str(trained["out"] / "best"), str(tmp_path / "absent.jsonl"), "--format", "duee")
    said = " ".join(result.output.split())
    assert result.exit_code == 2
    assert "--format duee is the submission form of the event task" in said and "ner model" in said


def test_score_gives_eval_metrics_for_records_submissions_and_gold_form(trained, tmp_path):
    from tests.test_submission import cluener_gold

    best, gold = str(trained["out"] / "best"), trained["train"]
    evaluated = tmp_path / "eval.json"
    assert run("eval", best, str(gold), "-o", str(evaluated)).exit_code == 0
    inputs = write_jsonl(tmp_path / "in.jsonl", [{"id": k, "text": t} for k, (t, _) in enumerate(NER_SENTENCES)])
    for fmt in ("records", "clue"):
        predicted, scored = tmp_path / f"{fmt}.jsonl", tmp_path / f"{fmt}-scores.json"
        assert run("predict", best, str(inputs), "-o", str(predicted), "--format", fmt).exit_code == 0
        result = run("score", str(predicted), str(gold), "--task", "ner", "-o", str(scored))
        assert result.exit_code == 0, result.output
        assert f"({fmt}) against" in result.output and "cluener_f1" in result.output
        assert json.loads(scored.read_text()) == json.loads(evaluated.read_text())
    # another system's output in the benchmark's gold form (CLUENER), with one entity missing
    other = cluener_gold()
    del other[0]["label"]["loc"]
    scored = tmp_path / "other.json"
    result = run("score", str(write_jsonl(tmp_path / "other.jsonl", other)), str(gold), "--task", "ner", "-o",
                 str(scored))
    assert result.exit_code == 0, result.output
    metrics = json.loads(scored.read_text())
    n_gold = sum(len(e) for _, e in NER_SENTENCES)
    n_loc = sum(kind == "loc" for _, e in NER_SENTENCES for _, kind in e)
    assert metrics["per_label"]["loc"]["tp"] == n_loc - 1 and metrics["metrics"]["span_recall"] == (n_gold - 1) / n_gold
    assert metrics["metrics"]["span_precision"] == 1.0


def test_score_names_the_lines_that_do_not_pair(trained, tmp_path):
    gold = trained["train"]
    records = [{"id": k, "text": t, "entities": []} for k, (t, _) in enumerate(NER_SENTENCES)]
    short = write_jsonl(tmp_path / "short.jsonl", records[:-1])
    said = " ".join(run("score", str(short), str(gold), "--task", "ner").output.split())
    assert f"{short}: 7 prediction line(s), but {gold} has 8 example(s)" in said
    swapped = write_jsonl(tmp_path / "swapped.jsonl", [records[1], records[0], *records[2:]])
    result = run("score", str(swapped), str(gold), "--task", "ner")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"{swapped}:1: the text differs from the text of {gold}:1" in said
    gold_ids = write_jsonl(tmp_path / "gold_ids.jsonl", [{**r, "id": f"g{k}"} for k, r in enumerate(trained["rows"])])
    result = run("score", str(write_jsonl(tmp_path / "ids.jsonl", records)), str(gold_ids), "--task", "ner")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and f"ids.jsonl:1: id 0, but {gold_ids}:1 has id 'g0'" in said
    result = run("score", str(short), str(gold), "--task", "ner", "--format", "duee")
    assert result.exit_code == 2 and "not a ner prediction form" in " ".join(result.output.split())


def test_a_model_dir_recording_flat_decoding_predicts_no_overlapping_spans(trained, tmp_path):
    from gplinker.data.examples import Span
    from gplinker.manifest import write_manifest
    from gplinker.metrics import has_overlap

    flat = tmp_path / "flat"
    shutil.copytree(trained["out"] / "best", flat)
    config = json.loads((flat / "config.json").read_text(encoding="utf-8"))
    assert config["gplinker"]["decode"] == "nested"  # what train records by default
    config["gplinker"]["decode"] = "flat"
    (flat / "config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    write_manifest(flat)  # a deliberate edit: re-hashed, as the corrupt-file message says
    inputs = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t, _ in NER_SENTENCES])
    out = tmp_path / "out.jsonl"
    assert run("predict", str(flat), str(inputs), "-o", str(out)).exit_code == 0
    records = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    spans = [[Span(e["start"], e["end"], e["type"]) for e in r["entities"]] for r in records]
    assert not any(has_overlap(s) for s in spans)
    assert {e["text"] for e in records[0]["entities"]} & {"北京", "北京大学"} in ({"北京"}, {"北京大学"})
    assert {e["text"] for e in records[1]["entities"]} == {"李娜", "上海"}  # nothing overlaps there: all kept
    metrics = tmp_path / "m.json"
    assert run("eval", str(flat), str(trained["train"]), "-o", str(metrics)).exit_code == 0
    assert json.loads(metrics.read_text())["main"] < 1.0  # the nested gold spans cannot all come back


def test_flat_decoding_is_for_ner_and_recorded_by_train(tmp_path):
    from gplinker.commands.train import model_section
    from gplinker.config import load_config
    from gplinker.data.schema import Schema

    cfg = load_config(None, ["model.decode=flat"])
    assert model_section(cfg, Schema("ner", entity_types=["x"]), "spans")["decode"] == "flat"
    result = run("train", str(write_jsonl(tmp_path / "c.yaml", ["task: relation"])), "--set", "model.decode=flat")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "model.decode flat is for the ner task" in said
    result = run("train", str(write_jsonl(tmp_path / "d.yaml", ["task: ner"])), "--set", "model.decode=greedy")
    assert result.exit_code == 2 and "model.decode must be nested or flat" in " ".join(result.output.split())


def test_check_prints_oracle(trained):
    result = run("check", str(trained["train"]), "--task", "ner", "--max-length", "16", "--stride", "4")
    assert result.exit_code == 0, result.output
    assert "F1 100.00" in result.output and "0 invalid" in result.output


def test_resume_continues_to_the_same_weights(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    full = tmp_path / "full"
    sets = tiny_overrides(train, train, full, "train.max_steps=6", "train.eval_every=2", "train.keep_checkpoints=3",
                          "model.scratch.dropout=0.1")
    assert run("train", str(cfg), *set_args(sets)).exit_code == 0
    assert sorted(p.name for p in full.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]
    # simulate a crash after step 4: only checkpoints up to 4 exist
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    for name in ("checkpoint-6", "last", "best"):
        shutil.rmtree(cut / name)
    sets_cut = [s.replace(str(full), str(cut)) for s in sets]
    again = run("train", str(cfg), *set_args(sets_cut))
    assert again.exit_code == 2 and "--resume" in again.output  # refuses to clobber checkpoints
    resumed = run("train", str(cfg), *set_args(sets_cut), "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert "resumed from" in resumed.output
    a, b = load_file(str(full / "last" / "model.safetensors")), load_file(str(cut / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def test_resume_refuses_a_changed_schedule_naming_the_keys(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    out = tmp_path / "run"
    sets = tiny_overrides(train, None, out, "train.epochs=1", "train.eval_every=1")  # 8 sentences: 2 steps
    assert run("train", str(cfg), *set_args(sets)).exit_code == 0
    saved = load_file(str(out / "last" / "model.safetensors"))
    result = run("train", str(cfg), *set_args(sets + ["train.max_steps=4", "train.lr=1e-3"]), "--resume")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "train.max_steps 0 → 4; train.lr 0.003 → 0.001" in said and "keeps the schedule it started with" in said
    # the same settings over more data would count more steps: refused too, naming the step counts
    write_jsonl(train, rows + rows)
    result = run("train", str(cfg), *set_args(sets), "--resume")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "its LR schedule runs 2 steps, this run would run 4" in said
    after = load_file(str(out / "last" / "model.safetensors"))
    assert all(torch.equal(saved[k], after[k]) for k in saved)  # nothing was trained or written


def test_bad_training_line_names_file_and_line_unless_skipped(tmp_path):
    rows = [spans_record(t, e) for t, e in NER_SENTENCES[:3]]
    rows.insert(1, {"text": "张伟", "entities": [{"start": 0, "end": 2, "type": "person", "text": "李娜"}]})
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    sets = set_args(tiny_overrides(train, None, tmp_path / "o", "train.max_steps=1"))
    result = run("train", str(cfg), *sets)
    assert result.exit_code == 2
    assert f"{train}:2:" in result.output and "'张伟' but the label says '李娜'" in result.output
    assert "Traceback" not in result.output
    result = run("train", str(cfg), *sets, "--skip-invalid")
    assert result.exit_code == 0, result.output
    assert "skipped 1 invalid line" in result.output


def test_an_ner_config_on_relation_data_stops_before_training(tmp_path):
    duie = [{"text": t, "spo_list": [{"subject": e[0][0], "subject_type": "人物", "predicate": "相识",
                                      "object": {"@value": e[1][0]}, "object_type": {"@value": "人物"}}]}
            for t, e in NER_SENTENCES]
    train = write_jsonl(tmp_path / "duie.json", duie)
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    result = run("train", str(cfg), *set_args(tiny_overrides(train, None, tmp_path / "o", "train.max_steps=1",
                                                             "data.format=spans")))
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output and not (tmp_path / "o" / "last").exists()
    assert f"no gold items of task ner found in {train} (read as format 'spans'; is this the right format/task?)" \
        in said
    result = run("check", str(train), "--task", "ner", "--format", "spans")
    said = " ".join(result.output.split())
    assert result.exit_code == 0 and f"no gold items of task ner found in {train} (is this the right" in said


def test_check_given_a_config_as_data_suggests_config_option(tmp_path):
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner", "data:", "  train: t.jsonl"])
    result = run("check", str(cfg))
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{cfg} is a training config, not a data file" in said and f"gplinker check --config {cfg}" in said
    assert "malformed JSON" not in said


def test_unknown_config_key_is_reported(tmp_path):
    cfg = write_jsonl(tmp_path / "c.yaml", ["task: ner", "trian:", "  lr: 1"])
    result = run("train", str(cfg))
    assert result.exit_code == 2 and "unknown config key 'trian'" in result.output


def test_help_lists_every_command():
    result = run("--help")
    for command in ("train", "eval", "score", "predict", "check", "demo"):
        assert command in result.output
    assert "--set" in run("train", "--help").output


def test_cli_puts_large_cpu_tensors_on_huge_pages_unless_the_user_chose(monkeypatch):
    import os

    monkeypatch.delenv("THP_MEM_ALLOC_ENABLE", raising=False)
    assert run("check", "--help").exit_code == 0
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "1"
    monkeypatch.setenv("THP_MEM_ALLOC_ENABLE", "0")  # an explicit opt-out is kept
    assert run("check", "--help").exit_code == 0
    assert os.environ["THP_MEM_ALLOC_ENABLE"] == "0"
