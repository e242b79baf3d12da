"""Trust under faults (issue 19): corrupted, truncated and missing files of model dirs and checkpoints
are caught by manifest.json and reported as `DIR/FILE: corrupt or incomplete (...)`, never used silently."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import shutil
import struct
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from gplinker.cli import app
from gplinker.manifest import MANIFEST, CorruptFile, verify, write_manifest
from gplinker.training.checkpoints import newest_usable
from tests.conftest import NER_SENTENCES, set_args, spans_record, tiny_overrides, write_jsonl

runner = CliRunner()


def says(output: str, text: str) -> bool:
    """`text` is in the CLI's output, whatever rich's line wrapping (which may cut a long path anywhere)."""
    return "".join(text.split()) in "".join(output.split())


def flip_byte(path, offset=-100):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "best")


@pytest.fixture(scope="module")
def run_with_checkpoints(tmp_path_factory):
    """A finished run with checkpoint-2 and checkpoint-4 (eval every 2 of 4 steps)."""
    tmp = tmp_path_factory.mktemp("run")
    train = write_jsonl(tmp / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp / "c.yaml", ["task: ner"])
    args = ["train", str(config), *set_args(tiny_overrides(train, train, tmp / "run", "train.max_steps=4",
                                                            "train.eval_every=2", "train.keep_checkpoints=3"))]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return tmp / "run", args


def test_manifest_lists_every_file_with_its_sha256_and_size(run_with_checkpoints):
    out, _ = run_with_checkpoints
    for name in ("best", "last", "checkpoint-2", "checkpoint-4"):
        d = out / name
        files = json.loads((d / MANIFEST).read_text())["files"]
        on_disk = sorted(p.name for p in d.iterdir() if p.name != MANIFEST)
        assert sorted(files) == on_disk
        for f, entry in files.items():
            data = (d / f).read_bytes()
            assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        assert verify(d) == "verified"
    assert "trainer_state.pt" in json.loads((out / "checkpoint-4" / MANIFEST).read_text())["files"]


def test_predict_and_eval_refuse_a_flipped_weight_byte(model_copy, tmp_path):
    flip_byte(model_copy / "model.safetensors")
    expected = json.loads((model_copy / MANIFEST).read_text())["files"]["model.safetensors"]["sha256"]
    data = write_jsonl(tmp_path / "in.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES[:2]])
    for command in (["predict", str(model_copy), str(data)], ["eval", str(model_copy), str(data)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        weights = model_copy / "model.safetensors"
        assert says(result.output, f"{weights}: corrupt or incomplete (expected sha256 {expected}")
        assert "Traceback" not in result.output


def test_a_deleted_tokenizer_file_is_refused_by_the_manifest(model_copy, tmp_path):
    (model_copy / "tokenizer.json").unlink()
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": "张伟"}])
    result = runner.invoke(app, ["predict", str(model_copy), str(data)])
    assert result.exit_code == 2
    assert says(result.output, f"{model_copy / 'tokenizer.json'}: corrupt or incomplete")
    assert says(result.output, "the file is missing")


def test_without_a_manifest_a_shrunken_tokenizer_is_refused_by_its_saved_size(model_copy, tmp_path):
    (model_copy / MANIFEST).unlink()
    (model_copy / "tokenizer.json").unlink()  # transformers then builds a tokenizer of the special tokens alone
    saved = json.loads((model_copy / "config.json").read_text())["gplinker"]["tokenizer_size"]
    result = runner.invoke(app, ["predict", str(model_copy), str(write_jsonl(tmp_path / "i.jsonl", [{"text": "张"}]))])
    assert result.exit_code == 2, result.output
    assert says(result.output, f"tokens, but it had {saved} when the model was saved: a tokenizer file is missing")


def test_a_dir_written_before_manifests_loads_unverified(model_copy, tmp_path):
    from gplinker.data.examples import Example
    from gplinker.predict import Predictor

    (model_copy / MANIFEST).unlink()
    assert verify(model_copy) == "unverified"
    with pytest.warns(UserWarning, match="no manifest.json .* unverified"):
        predictor = Predictor.from_pretrained(model_copy, device="cpu")
    assert len(predictor.predict([Example(text="张伟在北京")])) == 1


@pytest.mark.parametrize("cut", ["truncate", "empty", "huge_header"])
def test_a_broken_weights_file_without_manifest_is_a_clean_error(model_copy, tmp_path, cut):
    (model_copy / MANIFEST).unlink()
    weights = model_copy / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"truncate": data[: len(data) // 2], "empty": b"",
                         "huge_header": struct.pack("<Q", 2**62) + b"{}"}[cut])
    result = runner.invoke(app, ["predict", str(model_copy), str(write_jsonl(tmp_path / "i.jsonl", [{"text": "张"}]))])
    assert result.exit_code == 2, result.output
    assert says(result.output, f"{weights}: corrupt or incomplete (cannot read it as safetensors")


def test_verify_names_a_truncated_file_and_its_sizes(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"x" * 100)
    write_manifest(tmp_path)
    (tmp_path / "a.bin").write_bytes(b"x" * 40)
    sha = hashlib.sha256(b"x" * 100).hexdigest()
    with pytest.raises(CorruptFile, match=rf"a.bin: corrupt or incomplete \(expected sha256 {sha}, 100 bytes; "
                                          r"found 40 bytes\)"):
        verify(tmp_path)


def test_newest_usable_skips_corrupt_and_legacy_broken_checkpoints(run_with_checkpoints, tmp_path):
    out, _ = run_with_checkpoints
    two = shutil.copytree(out / "checkpoint-2", tmp_path / "checkpoint-2")
    four = shutil.copytree(out / "checkpoint-4", tmp_path / "checkpoint-4")
    assert newest_usable([two, four]) == (four, [])
    flip_byte(four / "trainer_state.pt", 200)
    path, skipped = newest_usable([two, four])
    assert path == two
    assert len(skipped) == 1 and skipped[0][0] == four
    assert skipped[0][1].startswith(f"{four / 'trainer_state.pt'}: corrupt or incomplete (expected")
    (two / MANIFEST).unlink()  # a checkpoint from before manifests, with an empty state file
    (two / "trainer_state.pt").write_bytes(b"")
    path, skipped = newest_usable([two, four])
    assert path is None
    state = two / "trainer_state.pt"
    assert skipped[1] == (two, f"{state}: corrupt or incomplete (cannot read it: the file ends early)")


def test_resume_falls_back_to_the_newest_checkpoint_that_verifies(run_with_checkpoints, tmp_path):
    out, args = run_with_checkpoints
    run = shutil.copytree(out, tmp_path / "run")
    args = [a.replace(str(out), str(run)) for a in args]
    flip_byte(run / "checkpoint-4" / "model.safetensors")
    result = runner.invoke(app, [*args, "--set", "train.max_steps=4", "--resume"])
    assert result.exit_code == 0, result.output
    assert says(result.output, f"--resume: skipped {run / 'checkpoint-4'}: "
                               f"{run / 'checkpoint-4' / 'model.safetensors'}: corrupt")
    assert says(result.output, f"resumed from {run / 'checkpoint-2'} at step 2")
    assert verify(run / "last") == "verified"
    logged = [json.loads(x)["step"] for x in (run / "train_log.jsonl").read_text().splitlines()
              if json.loads(x)["event"] == "train"]
    assert logged == [1, 2, 3, 4]  # steps 3 and 4 ran twice, and are logged once


def test_resume_with_no_checkpoint_that_verifies_stops(run_with_checkpoints, tmp_path):
    out, args = run_with_checkpoints
    run = shutil.copytree(out, tmp_path / "run")
    args = [a.replace(str(out), str(run)) for a in args]
    for name in ("checkpoint-2", "checkpoint-4"):
        (run / name / "trainer_state.pt").write_bytes(b"")
    result = runner.invoke(app, [*args, "--resume"])
    assert result.exit_code == 2, result.output
    assert says(result.output, f"--resume: no checkpoint in {run} verifies")
    assert "Traceback" not in result.output


# --- a full disk --------------------------------------------------------------------------------

def limited(max_bytes: int, *args: str) -> list[str]:
    """A gplinker command line that runs under a file-size limit (ulimit -f): a write past it fails with EFBIG,
    as on a full disk (Python ignores SIGXFSZ, so the write returns the error)."""
    code = (f"import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({max_bytes}, {max_bytes})); "
            "from gplinker.cli import app; sys.argv[0] = 'gplinker'; app()")
    return [sys.executable, "-c", code, *args]


def test_a_checkpoint_write_past_the_disk_names_the_dir_and_leaves_nothing_half_written(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    out = tmp_path / "run"
    # the tiny model's weights (~66 kB) pass 30 kB; its cache entries and logs do not
    proc = subprocess.run(limited(30_000, "train", str(config), *set_args(tiny_overrides(train, None, out,
                                                                                          "train.max_steps=2"))),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says(proc.stderr, f"{out / 'best'}: could not write it: the disk is full or a file size limit was "
                             "reached (EFBIG")
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(out.glob(".*")), "no temp dir or lock is left behind"
    assert not (out / "best").exists()


def test_predict_past_the_disk_leaves_no_partial_output_and_says_how_far_it_got(tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t, _ in NER_SENTENCES] * 20)
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(limited(3_000, "predict", str(tiny_model_dir), str(data), "-o", str(out)),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says(proc.stderr, f"{out}: could not write it: the disk is full or a file size limit was reached (EFBIG")
    done = re.search(r"\. (\d+) line\(s\) had been predicted; (\S+) was left as it was", " ".join(proc.stderr.split()))
    assert done and 0 < int(done.group(1)) < len(NER_SENTENCES) * 20, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_atomic_dir_that_fails_keeps_the_previous_copy(tmp_path):
    from gplinker.atomic_files import WriteFailed
    from gplinker.training.checkpoints import atomic_dir

    target = tmp_path / "best"
    atomic_dir(target, lambda d: (d / "a.txt").write_text("old"))

    def full(d):
        (d / "a.txt").write_text("new, half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteFailed, match=r"best: could not write it: the disk is full .*\(ENOSPC"):
        atomic_dir(target, full)
    assert (target / "a.txt").read_text() == "old"
    assert verify(target) == "verified"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_a_cache_that_cannot_be_written_falls_back_to_an_uncached_run(tmp_path, monkeypatch):
    from gplinker.data import cache

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache, "commit", full)
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), *set_args(tiny_overrides(train, None, out,
                                                                                "train.max_steps=2"))])
    assert result.exit_code == 0, result.output
    assert says(result.output, "(ENOSPC") and says(result.output, "the corpus stage runs without the encoding cache")
    assert says(result.output, "the windows stage runs without the encoding cache")
    assert verify(out / "last") == "verified"
    assert not list((out / "cache").glob("corpus-*"))


def test_a_cache_dir_that_cannot_be_made_is_skipped_with_a_warning(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("GPLINKER_CACHE_DIR", str(blocker / "cache"))
    train = write_jsonl(tmp_path / "train.jsonl", [spans_record(t, e) for t, e in NER_SENTENCES])
    config = write_jsonl(tmp_path / "c.yaml", ["task: ner"])
    result = runner.invoke(app, ["train", str(config), *set_args(tiny_overrides(train, None, tmp_path / "run",
                                                                                "train.max_steps=2"))])
    assert result.exit_code == 0, result.output
    assert says(result.output, f"{blocker / 'cache'}: could not write it") and says(result.output, "running without "
                                                                                    "the encoding cache")
    assert verify(tmp_path / "run" / "last") == "verified"
