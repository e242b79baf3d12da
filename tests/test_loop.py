"""The training loop on its own: a 4-parameter regression model, hand-made micro-batches, no task.

`train_steps` is driven directly and its Step records are checked: how many steps, which
micro-batches, gradient accumulation, skipped non-finite steps, evaluation and patience, and a
resume from a checkpoint. The last tests run `fit` and check what it writes.
"""

from __future__ import annotations

import io
import json
import random
import shutil
from types import SimpleNamespace

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file, save_file

from gplinker.config import TrainConfig
from gplinker.devices import seed_everything
from gplinker.errors import GPLinkerError
from gplinker.training import (
    MAX_BAD_STEPS,
    LoopState,
    Optimisation,
    Step,
    fit,
    list_checkpoints,
    restore_checkpoint,
    save_checkpoint,
    train_steps,
)
from gplinker.training.loop import MAX_OVERFLOW_STEPS, build_optimisation, count_steps
from gplinker.training.train_log import TrainLog

CPU = torch.device("cpu")
X = torch.linspace(-1.0, 1.0, 36).reshape(12, 3)
Y = X @ torch.tensor([0.5, -1.0, 2.0]) + 0.3


class Tiny(torch.nn.Module):
    """Linear regression (3 weights and a bias); forward returns an object with `.loss`, the mean squared error.

    The loss of the forward calls numbered in `nan_calls` (from 1) is NaN.
    """

    def __init__(self, dropout: float = 0.0, nan_calls=()):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[0.1, 0.2, -0.3]]))
            self.linear.bias.zero_()
        self.dropout = torch.nn.Dropout(dropout)
        self.calls, self.nan_calls = 0, set(nan_calls)

    def forward(self, x, y):
        self.calls += 1
        loss = ((self.linear(self.dropout(x)).squeeze(-1) - y) ** 2).mean()
        return SimpleNamespace(loss=loss * float("nan") if self.calls in self.nan_calls else loss)


class Data:
    """`micro` micro-batches of `size` items; each epoch shuffles them its own way; `ran` lists what was trained on."""

    def __init__(self, micro: int = 6, size: int = 2):
        self.micro_batches = [list(range(k * size, (k + 1) * size)) for k in range(micro)]
        self.ran: list[list[int]] = []

    def order(self, epoch: int) -> list[list[int]]:
        batches = list(self.micro_batches)
        random.Random(epoch).shuffle(batches)
        return batches

    def make(self, indices: list[int]) -> dict:
        self.ran.append(list(indices))
        return {"x": X[indices], "y": Y[indices]}


def config(**values) -> TrainConfig:
    base = {"lr": 0.05, "warmup_ratio": 0.0, "weight_decay": 0.0, "max_grad_norm": 0.0, "eval_every": 0}
    return TrainConfig(**{**base, **values})


def sgd(model: torch.nn.Module) -> Optimisation:
    """Plain SGD at a constant rate: unlike AdamW, its update is proportional to the gradient."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    return Optimisation(optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0),
                        torch.amp.GradScaler("cpu", enabled=False))


def steps(model, data: Data, cfg: TrainConfig, state: LoopState | None = None, evaluate=None, opt=None):
    """Iterate train_steps to its end; (the Step records, the final state)."""
    total = count_steps(cfg, len(data.order(0)))
    opt = opt or build_optimisation(model, cfg, CPU, total)
    state = state or LoopState()
    records = list(train_steps(model, data.make, data.order, cfg, opt, CPU, state=state, total_steps=total,
                               evaluate=evaluate))
    return records, state


def dev_score(model: Tiny) -> tuple[float, dict]:
    """An evaluate function: minus the mean squared error over all items (no forward call, so no dropout)."""
    with torch.no_grad():
        mse = float(((model.linear(X).squeeze(-1) - Y) ** 2).mean())
    return -mse, {"mse": mse}


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def scores_from(values):
    """An evaluate function that returns the next of `values` each call, and records the model's mode."""
    values, modes = iter(values), []

    def evaluate(model):
        modes.append(model.training)
        score = next(values)
        return score, {"f1": score, "count": 3, "flag": True, "name": "dev"}

    return evaluate, modes


# --- steps and batches ---------------------------------------------------------------------------


def test_one_step_per_grad_accum_micro_batches_over_the_epochs():
    data = Data(micro=5)
    assert data.order(0) != data.order(1)
    records, state = steps(Tiny(), data, config(epochs=2, grad_accum=2))
    assert [r.step for r in records] == [1, 2, 3, 4, 5, 6]  # ceil(5 / 2) = 3 steps an epoch
    assert [r.epoch for r in records] == [0, 0, 0, 1, 1, 1]
    assert [r.windows for r in records] == [4, 4, 2, 4, 4, 2]  # the epoch's last step has one micro-batch
    assert data.ran == data.order(0) + data.order(1)  # each epoch in its own order, every micro-batch once
    assert not any(r.skipped for r in records)
    assert (state.step, state.epoch, state.batch_in_epoch) == (6, 2, 0)


def test_max_steps_wins_over_epochs_and_stops_mid_epoch():
    data = Data(micro=5)
    records, state = steps(Tiny(), data, config(epochs=1, max_steps=4, grad_accum=2))
    assert [r.step for r in records] == [1, 2, 3, 4]
    assert data.ran == data.order(0) + data.order(1)[:2]
    assert (state.epoch, state.batch_in_epoch) == (1, 2)


def test_grad_accumulation_over_micro_batches_equals_one_big_batch():
    big_model, acc_model = Tiny(), Tiny()
    big, _ = steps(big_model, Data(micro=1, size=8), config(max_steps=3), opt=sgd(big_model))
    acc, _ = steps(acc_model, Data(micro=2, size=4), config(max_steps=3, grad_accum=2), opt=sgd(acc_model))
    assert len(big) == len(acc) == 3
    assert not torch.equal(weights(big_model)["linear.weight"], Tiny().linear.weight)
    for k, v in weights(big_model).items():
        torch.testing.assert_close(weights(acc_model)[k], v, rtol=1e-6, atol=1e-7)
    for a, b in zip(acc, big):  # the loss of a step is the mean of its micro-batch losses
        assert a.loss == pytest.approx(b.loss, rel=1e-6)


# --- non-finite losses ---------------------------------------------------------------------------


def test_non_finite_loss_is_a_skipped_step_that_changes_nothing():
    model, data = Tiny(nan_calls={3}), Data()
    cfg = config(max_steps=4)
    opt = build_optimisation(model, cfg, CPU, 4)
    seen = []
    for record in train_steps(model, data.make, data.order, cfg, opt, CPU, state=LoopState(), total_steps=4):
        seen.append((record, weights(model), [p.grad for p in model.parameters()]))
    assert [(r.step, r.skipped) for r, _, _ in seen] == [(1, False), (2, False), (2, True), (3, False), (4, False)]
    skipped, before = seen[2], seen[1]
    assert skipped[0].loss != skipped[0].loss  # NaN
    assert all(torch.equal(skipped[1][k], before[1][k]) for k in before[1])
    assert all(g is None for g in skipped[2])
    assert len(data.ran) == 5  # the skipped micro-batch is not counted as a step


def test_max_bad_steps_non_finite_losses_in_a_row_raise():
    model, data, cfg, records = Tiny(nan_calls=range(1, 1000)), Data(), config(max_steps=50), []
    loop = train_steps(model, data.make, data.order, cfg, build_optimisation(model, cfg, CPU, 50), CPU,
                       state=LoopState(), total_steps=50)
    with pytest.raises(GPLinkerError, match=f"{MAX_BAD_STEPS} non-finite losses in a row at step 1"):
        for record in loop:
            records.append(record)
    assert len(records) == MAX_BAD_STEPS and all(r.skipped and r.step == 0 for r in records)


def test_a_good_step_resets_the_count_of_bad_steps():
    bad = set(range(1, MAX_BAD_STEPS)) | set(range(MAX_BAD_STEPS + 1, 2 * MAX_BAD_STEPS))  # 9 bad, 1 good, 9 bad
    records, state = steps(Tiny(nan_calls=bad), Data(), config(max_steps=3))
    assert sum(r.skipped for r in records) == 2 * (MAX_BAD_STEPS - 1)
    assert state.step == 3 and state.bad_steps == 0


# --- fp16 gradient overflows (GradScaler skips) ----------------------------------------------------


class InfGrads(Tiny):
    """Tiny whose weight gradient is inf in the backward of the forward calls numbered in `inf_calls`."""

    def __init__(self, inf_calls=()):
        super().__init__()
        self.inf_calls = set(inf_calls)
        self.linear.weight.register_hook(lambda g: g * float("inf") if self.calls in self.inf_calls else g)


def scaled(model: torch.nn.Module, cfg: TrainConfig, total: int, init_scale: float = 256.0) -> Optimisation:
    """The loop's optimisation with an enabled GradScaler (CPU GradScaler: the same skip-and-halve logic as CUDA's)."""
    opt = build_optimisation(model, cfg, CPU, total)
    return Optimisation(opt.optimizer, opt.scheduler, torch.amp.GradScaler("cpu", init_scale=init_scale))


def test_an_overflowing_step_is_skipped_with_its_scale_not_counted_as_a_bad_loss(tmp_path):
    model, data, cfg = InfGrads(inf_calls={3}), Data(), config(max_steps=4, warmup_ratio=0.5)
    opt = scaled(model, cfg, 4)
    seen = []
    for record in train_steps(model, data.make, data.order, cfg, opt, CPU, state=LoopState(), total_steps=4):
        seen.append((record, weights(model)))
    assert [(r.step, r.skipped, r.overflow) for r, _ in seen] == [
        (1, False, None), (2, False, None), (2, True, 256.0), (3, False, None), (4, False, None)]
    (skipped, after), (before, kept) = seen[2], seen[1]
    assert skipped.loss == skipped.loss  # a finite loss: not a bad step
    assert all(torch.equal(after[k], kept[k]) for k in kept)  # no weight changed
    assert skipped.lr == before.lr and seen[3][0].lr != before.lr  # the schedule waits for the real step
    assert opt.scaler.get_scale() == 128.0
    log = TrainLog(tmp_path, log_every=1, total_steps=4)
    for record, _ in seen:
        log.add(record)
    lines = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [e for e in lines if e["event"] == "overflow"] == [{"event": "overflow", "step": 3, "loss_scale": 256.0}]
    assert [e["step"] for e in lines if e["event"] == "train"] == [1, 2, 3, 4]


def test_overflows_at_every_scale_stop_training_with_a_clear_error():
    model, data, cfg = InfGrads(inf_calls=range(1, 1000)), Data(), config(max_steps=50)
    records = []
    with pytest.raises(GPLinkerError, match=f"overflowed at every loss scale {MAX_OVERFLOW_STEPS} steps in a row"):
        for record in train_steps(model, data.make, data.order, cfg, scaled(model, cfg, 50), CPU, state=LoopState(),
                                  total_steps=50):
            records.append(record)
    assert len(records) == MAX_OVERFLOW_STEPS and all(r.overflow is not None and r.step == 0 for r in records)
    assert [r.overflow for r in records[:3]] == [256.0, 128.0, 64.0]


# --- evaluation and early stopping ---------------------------------------------------------------


def test_evaluation_every_eval_every_steps_and_after_the_last_with_the_best_tracked():
    model = Tiny()
    evaluate, modes = scores_from([0.1, 0.3, 0.2])
    records, state = steps(model, Data(), config(max_steps=5, eval_every=2), evaluate=evaluate)
    evaluations = [(r.step, r.evaluation) for r in records if r.evaluation is not None]
    assert [s for s, _ in evaluations] == [2, 4, 5]
    assert [e.improved for _, e in evaluations] == [True, True, False]
    assert [(e.best_score, e.best_step) for _, e in evaluations] == [(0.1, 2), (0.3, 4), (0.3, 4)]
    assert evaluations[0][1].metrics == {"f1": 0.1, "count": 3.0}  # numbers only, no bools
    assert [(h["step"], h["score"]) for h in state.history] == [(2, 0.1), (4, 0.3), (5, 0.2)]
    assert (state.best_score, state.best_step, state.evals_since_best) == (0.3, 4, 1)
    assert modes == [False, False, False] and model.training  # evaluated in eval mode, back to train mode


def test_eval_every_0_evaluates_at_each_epoch_end():
    evaluate, _ = scores_from([0.1, 0.2])
    records, _ = steps(Tiny(), Data(micro=5), config(epochs=2, grad_accum=2), evaluate=evaluate)
    assert [r.step for r in records if r.evaluation is not None] == [3, 6]


def test_patience_stops_after_that_many_evaluations_without_improvement():
    evaluate, _ = scores_from([0.5, 0.4, 0.6, 0.6, 0.6, 0.9, 0.9])
    records, state = steps(Tiny(), Data(), config(max_steps=50, eval_every=1, patience=2), evaluate=evaluate)
    assert [r.evaluation.improved for r in records] == [True, False, True, False, False]  # 0.4 does not run out
    assert state.step == 5 and state.best_step == 3


def test_without_evaluate_every_evaluation_counts_as_the_best():
    records, state = steps(Tiny(), Data(), config(max_steps=4, eval_every=2))
    evaluations = [r.evaluation for r in records if r.evaluation is not None]
    assert [e.improved for e in evaluations] == [True, True] and state.best_step == 4
    assert all(e.score != e.score for e in evaluations)  # NaN


def test_a_loop_already_at_its_last_step_does_nothing():
    data = Data()
    records, state = steps(Tiny(), data, config(max_steps=2), state=LoopState(step=2))
    assert records == [] and data.ran == [] and state.step == 2


# --- resume --------------------------------------------------------------------------------------


def save_safetensors(model, directory):
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / "model.safetensors"))


@pytest.mark.parametrize("resume_at, position", [(2, (0, 2)), (4, (1, 0))], ids=["mid-epoch", "epoch-end"])
def test_resume_from_a_checkpoint_continues_as_the_uninterrupted_run(tmp_path, resume_at, position):
    # 4 micro-batches an epoch, an evaluation every 2 steps: a checkpoint mid-epoch (2) or at the epoch's end (4)
    cfg = config(max_steps=10, eval_every=2, warmup_ratio=0.3, weight_decay=0.01)

    seed_everything(0)
    full_model, full = Tiny(dropout=0.5), Data(micro=4)
    full_records, full_state = steps(full_model, full, cfg, evaluate=dev_score)

    seed_everything(0)
    model, data, state = Tiny(dropout=0.5), Data(micro=4), LoopState()
    opt = build_optimisation(model, cfg, CPU, 10)
    loop = train_steps(model, data.make, data.order, cfg, opt, CPU, state=state, total_steps=10, evaluate=dev_score)
    for record in loop:
        if record.step == resume_at:
            assert (state.epoch, state.batch_in_epoch) == position  # the next micro-batch to run
            checkpoint = save_checkpoint(tmp_path, state, model, opt.optimizer, opt.scheduler, opt.scaler,
                                         save_safetensors, keep=1)
            break
    loop.close()
    ran_before = len(data.ran)

    torch.manual_seed(123)  # the checkpoint's RNG state must win over whatever ran since
    resumed_model, resumed = Tiny(dropout=0.5), Data(micro=4)
    torch.nn.init.zeros_(resumed_model.linear.weight)
    resumed_opt = build_optimisation(resumed_model, cfg, CPU, 10)
    resumed_state = restore_checkpoint(checkpoint, resumed_model, resumed_opt.optimizer, resumed_opt.scheduler,
                                       resumed_opt.scaler, CPU)
    records, resumed_state = steps(resumed_model, resumed, cfg, state=resumed_state, evaluate=dev_score,
                                   opt=resumed_opt)

    assert resumed.ran == full.ran[ran_before:]
    if resume_at == 4:
        assert resumed.ran[:4] == full.order(1) != full.order(0)  # the new epoch's order, not the old one's
    assert [r.step for r in records] == list(range(resume_at + 1, 11))
    assert [r.loss for r in records] == [r.loss for r in full_records[resume_at:]]
    assert all(torch.equal(v, weights(full_model)[k]) for k, v in weights(resumed_model).items())
    def timeless(history):  # an evaluation's wall time differs between any two runs
        return [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]

    assert timeless(resumed_state.history) == timeless(full_state.history)


# --- the consumers -------------------------------------------------------------------------------


def test_train_log_line_is_the_mean_since_the_previous_line(tmp_path):
    log = TrainLog(tmp_path, log_every=2, total_steps=3)
    t = log.since
    records = [Step(1, 0, 1.0, 0.1, 4, t + 1), Step(1, 0, float("nan"), 0.1, 4, t + 2, skipped=True),
               Step(2, 0, 3.0, 0.2, 4, t + 4), Step(3, 1, 5.0, 0.3, 2, t + 5)]
    lines = [log.add(r) for r in records]
    log.close()
    assert lines[:2] == [None, None]
    # the skipped step's windows count towards the rate, its loss does not count towards the mean
    assert lines[2] == {"step": 2, "loss": 2.0, "lr": 0.2, "windows_per_s": pytest.approx(12 / 4)}
    assert lines[3] == {"step": 3, "loss": 5.0, "lr": 0.3, "windows_per_s": pytest.approx(2 / 1)}  # the last step
    written = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert written == [{"event": "train", **lines[2]}, {"event": "train", **lines[3]}]


# --- fit: the loop wired to checkpoints, log and console -----------------------------------------


def run_fit(out, model=None, resume_from=None, evaluate=dev_score, **values):
    cfg = config(output_dir=str(out), seed=3, **values)
    buffer = io.StringIO()
    model = model or Tiny(dropout=0.5)
    result = fit(model=model, make_batch=Data().make, batch_order=Data().order, cfg=cfg,
                 save_model=save_safetensors, evaluate=evaluate,
                 resume_from=resume_from, console=Console(file=buffer, width=200))
    return result, buffer.getvalue()


def test_fit_writes_best_checkpoints_last_history_and_the_log(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / ".best.tmp-999").mkdir()  # left by a write that a crash interrupted
    evaluate, _ = scores_from([0.2, 0.5, 0.4])
    result, console = run_fit(out, model=Tiny(dropout=0.5, nan_calls={3}), evaluate=evaluate, max_steps=6,
                              eval_every=2, log_every=4, keep_checkpoints=2)
    history = json.loads((out / "history.json").read_text())
    assert [(h["step"], h["score"]) for h in history] == [(2, 0.2), (4, 0.5), (6, 0.4)] and result.history == history
    best = history[1]
    assert (result.best_score, result.best_step, result.steps) == (0.5, 4, 6)
    assert json.loads((out / "best" / "metrics.json").read_text()) == best
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-4", "checkpoint-6"]
    at = {d: load_file(str(out / d / "model.safetensors"))["linear.weight"] for d in ("best", "checkpoint-4", "last")}
    assert torch.equal(at["best"], at["checkpoint-4"]) and not torch.equal(at["best"], at["last"])
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [(e["event"], e["step"]) for e in log] == [("eval", 2), ("train", 4), ("eval", 4), ("train", 6), ("eval", 6)]
    assert set(log[1]) == {"event", "step", "loss", "lr", "windows_per_s"}
    assert log[0] == {"event": "eval", **history[0]}
    assert not list(out.glob(".*.tmp-*"))
    assert "warning: non-finite loss at step 3; step skipped" in console
    assert "step 6: dev score 40.00 (best 50.00 at step 4)" in console  # percentages, as in the tables


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as strict JSON parsers do."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_fit_prints_timestamped_train_lines_when_the_console_is_no_terminal(tmp_path):
    import re

    result, console = run_fit(tmp_path / "run", max_steps=6, eval_every=3, log_every=2)
    lines = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d step (\d+)/6 loss (\S+) lr (\S+) (\d+) win/s$", console, re.M)
    log = [strict_json(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    train = [e for e in log if e["event"] == "train"]
    assert [int(step) for step, *_ in lines] == [e["step"] for e in train] == [2, 4, 6]
    assert [(float(loss), float(lr)) for _, loss, lr, _ in lines] == \
        [(round(e["loss"], 4), float(f"{e['lr']:.2e}")) for e in train]
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d step 6: dev score -?\d+\.\d\d ", console, re.M)


def test_fit_on_a_terminal_shows_the_bar_not_train_lines(tmp_path):
    cfg = config(output_dir=str(tmp_path / "run"), seed=3, max_steps=4, log_every=1)
    buffer = io.StringIO()
    fit(model=Tiny(), make_batch=Data().make, batch_order=Data().order, cfg=cfg, save_model=save_safetensors,
        evaluate=dev_score, console=Console(file=buffer, width=200, force_terminal=True))
    assert " win/s" in buffer.getvalue()  # on the bar
    assert "step 4/4 loss" not in buffer.getvalue()


def test_train_log_without_a_dev_set_is_strict_json_with_a_null_score(tmp_path):
    result, console = run_fit(tmp_path / "run", evaluate=None, max_steps=4, eval_every=2)
    log = [strict_json(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    evals = [e for e in log if e["event"] == "eval"]
    assert [(e["step"], e["score"]) for e in evals] == [(2, None), (4, None)]
    assert strict_json((tmp_path / "run" / "history.json").read_text())[-1]["score"] is None
    assert "dev score" not in console


def test_fit_resumed_from_a_checkpoint_ends_on_the_uninterrupted_weights(tmp_path):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_fit(full, max_steps=8, eval_every=3, keep_checkpoints=5)
    resumed.mkdir()
    shutil.copytree(full / "checkpoint-3", resumed / "checkpoint-3")
    result, console = run_fit(resumed, resume_from=resumed / "checkpoint-3", max_steps=8, eval_every=3)
    assert f"resumed from {resumed / 'checkpoint-3'} at step 3" in console
    a, b = load_file(str(full / "last" / "model.safetensors")), load_file(str(resumed / "last" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    def history(run):  # the evaluations, without their wall time (which differs under load)
        return [{k: v for k, v in e.items() if k != "seconds"} for e in json.loads((run / "history.json").read_text())]

    assert history(resumed) == history(full)
    assert result.steps == 8


def test_schedule_changes_name_what_shapes_the_schedule_and_ignore_epochs_under_max_steps():
    from gplinker.training.checkpoints import schedule_changes

    saved = {"max_steps": 100, "epochs": 3, "lr": 2e-5, "warmup_ratio": 0.1, "eval_every": 10, "batch_size": 16,
             "grad_accum": 1, "head_lr": 0.0, "weight_decay": 0.01}
    assert schedule_changes(saved, {**saved, "eval_every": 5, "epochs": 9}) == []  # epochs counts no step here
    assert schedule_changes(saved, {**saved, "warmup_ratio": 0.2}) == ["train.warmup_ratio 0.1 → 0.2"]
    by_epochs = {**saved, "max_steps": 0}
    assert schedule_changes(by_epochs, {**by_epochs, "epochs": 4}) == ["train.epochs 3 → 4"]
    assert schedule_changes({}, saved) == []  # a checkpoint without a saved config: nothing to compare
