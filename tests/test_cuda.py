"""The CUDA path: heads, loss, AMP training and predict on a GPU against the CPU (`pytest -m cuda`).

Every test here skips without CUDA; scripts/gpu_check.sh runs them on a GPU machine. The block
plans themselves (large blocks, no read-backs) are also tested on the CPU: tests/test_pointer.py and
tests/test_losses.py run every case under both plans.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gplinker.modeling.losses import pointer_loss
from gplinker.modeling.pointer import EfficientGlobalPointer, GlobalPointer

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

B, L, D, HEADS, HEAD_SIZE = 4, 48, 64, 6, 32
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 3e-2, torch.float16: 5e-3}  # relative, of the loss


def batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """hidden (B, L, D), mask (B, L) with padded rows, positives (B, HEADS, 3) flat cells i * L + j (-1 = pad)."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, D, generator=g)
    lengths = torch.tensor([L, L - 7, L // 2, 5])
    mask = (torch.arange(L)[None, :] < lengths[:, None]).long()
    cells = []
    for b in range(B):
        row = []
        for _ in range(HEADS):
            i = int(torch.randint(0, int(lengths[b]), (1,), generator=g))
            j = min(int(lengths[b]) - 1, i + int(torch.randint(0, 4, (1,), generator=g)))
            row.append([i * L + j, -1, -1])
        cells.append(row)
    return hidden, mask, torch.tensor(cells)


def loss_and_grads(head: torch.nn.Module, hidden, mask, positives, amp: torch.dtype | None):
    hidden = hidden.clone().requires_grad_(True)
    with torch.autocast(hidden.device.type, dtype=amp or torch.float32, enabled=amp is not None):
        loss = pointer_loss(head(hidden, mask), positives)
    grads = torch.autograd.grad(loss, [hidden, *head.parameters()])
    return loss.detach().float().cpu(), [g.float().cpu() for g in grads]


@pytest.mark.parametrize("head_cls", [EfficientGlobalPointer, GlobalPointer])
@pytest.mark.parametrize("amp", [None, torch.bfloat16, torch.float16])
def test_heads_and_loss_on_cuda_equal_the_cpu(head_cls, amp):
    torch.manual_seed(0)
    head = head_cls(D, HEADS, HEAD_SIZE)
    hidden, mask, positives = batch()
    cpu_loss, cpu_grads = loss_and_grads(head, hidden, mask, positives, None)  # float32 on the CPU
    gpu = head_cls(D, HEADS, HEAD_SIZE).cuda()
    gpu.load_state_dict(head.state_dict())
    loss, grads = loss_and_grads(gpu, hidden.cuda(), mask.cuda(), positives.cuda(), amp)
    tol = TOLERANCE[amp or torch.float32]
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
    torch.testing.assert_close(loss, cpu_loss, rtol=tol, atol=tol)
    for got, want in zip(grads, cpu_grads):
        scale = want.abs().max().clamp(min=1e-6)
        assert ((got - want).abs().max() / scale) <= (1e-4 if amp is None else 10 * tol)


def test_the_egp_forward_and_backward_read_nothing_back_to_the_host():
    torch.manual_seed(0)
    head = EfficientGlobalPointer(D, HEADS, HEAD_SIZE).cuda()
    hidden, mask, positives = (t.cuda() for t in batch())
    hidden.requires_grad_(True)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host read-back raises
    try:
        loss = pointer_loss(head(hidden, mask), positives)
        loss.backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(hidden.grad).all()


def demo_f1(tmp_path: Path, amp: str) -> float:
    from gplinker.commands.evaluate import evaluate_dir
    from gplinker.commands.train import train
    from gplinker.config import load_config
    from gplinker.demo import CONFIG, HERE

    out = tmp_path / f"demo-{amp}"
    cfg = load_config(CONFIG, [f"train.output_dir={out}", "train.device=cuda", f"train.amp={amp}"])
    train(cfg, overwrite=True)
    return evaluate_dir(out / "best", HERE / "dev.jsonl").scores.main


def test_demo_training_under_bf16_and_fp16_ends_within_one_point_of_float32(tmp_path):
    full = demo_f1(tmp_path, "off")
    for amp in ("bf16", "fp16"):
        f1 = demo_f1(tmp_path, amp)
        log = [json.loads(x) for x in (tmp_path / f"demo-{amp}" / "train_log.jsonl").read_text().splitlines()]
        assert all(e["loss"] == e["loss"] for e in log if e["event"] == "train"), f"{amp}: a non-finite loss"
        assert abs(f1 - full) <= 0.01, f"{amp}: dev F1 {100 * f1:.2f} vs float32 {100 * full:.2f}"


def test_predict_on_cuda_gives_the_cpu_entities(tiny_model_dir):
    from gplinker.pipeline import Pipeline
    from tests.conftest import NER_SENTENCES

    texts = [t for t, _ in NER_SENTENCES] + ["".join(t for t, _ in NER_SENTENCES)]  # a long one: several windows

    def entities(device: str) -> list[list[tuple]]:
        records = Pipeline.from_pretrained(tiny_model_dir, runtime="torch", device=device)(texts)
        return [[(e["start"], e["end"], e["type"]) for e in r["entities"]] for r in records]

    assert entities("cuda") == entities("cpu")
