"""Two processes with DistributedDataParallel (gloo, CPU) against one process with the same
effective batch: the same data, the same averaged gradients, the same weights.

The processes are started the way torchrun starts them (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT in the environment), without torchrun itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aerialsam.training import kinds, loop
from tests.training_helpers import checkpoint_weights, read_metrics, tiny_config

# Each rank saves its weights at every checkpoint (train() saves rank 0's only) and its
# gradients, as DDP left them, before every optimiser step.
WORKER = """
import json, sys
from pathlib import Path
import torch
from aerialsam.training import loop
from aerialsam.training import train_config

config, data, run_dir, out = json.loads(sys.argv[1])
checkpoint, optimizer_step = loop._checkpoint, loop._optimizer_step

def save_weights(ctx, step):
    checkpoint(ctx, step)
    torch.save(ctx.model.state_dict(), Path(out) / f"rank{ctx.rank}_step{step}.pt")

def save_gradients(ctx):
    step = ctx.scheduler.last_epoch + 1
    torch.save({n: p.grad.clone() for n, p in ctx.model.named_parameters()},
               Path(out) / f"rank{ctx.rank}_grad{step}.pt")
    optimizer_step(ctx)

loop._checkpoint, loop._optimizer_step = save_weights, save_gradients
loop.train(train_config.make_config(config), loop.TrainData(*map(Path, data)), run_dir,
            stop_after=2)
"""
# 3 steps planned, 2 taken: no final validation; per-epoch validation comes after 9 steps
DDP = {"model": "unet", "steps": 3, "checkpoint_every": 1, "warmup_steps": 1}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(world: int, config: dict, data: loop.TrainData, run_dir: Path,
           out: Path) -> list[subprocess.Popen]:
    """Start ``world`` worker processes as torchrun would."""
    script = out / "worker.py"
    script.write_text(WORKER)
    argument = json.dumps([config, [str(data.chips), str(data.masks), str(data.splits)],
                           str(run_dir), str(out)])
    port = str(free_port())
    processes = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank),
               "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port,
               "OMP_NUM_THREADS": "1"}
        processes.append(subprocess.Popen([sys.executable, str(script), argument], env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True))
    return processes


def wait_all(processes: list[subprocess.Popen], timeout: float = 600) -> None:
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=timeout)[0])
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]


def max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


TASKS = {"buildings": ("smoke_train_data", {}, 1e-3),
         # A road run with its topology term. clDice's soft skeleton is 16 rounds of max
         # pooling, whose gradient goes to one pixel of each window; on the flat colours of
         # the synthetic tiles an untrained U-Net's output has near-ties everywhere, which the
         # ranks' one-thread sums (not the batch) can break the other way: a few pixels' worth
         # of gradient moves. A rank that did not average (or saw other chips) is off by the
         # gradient's own size, far above this.
         "roads": ("smoke_road_data", {"task": "roads", "cldice_weight": 0.5}, 1e-2)}


@pytest.mark.parametrize("task", sorted(TASKS))
def test_two_ranks_match_one_process_with_the_same_effective_batch(
        task: str, request: pytest.FixtureRequest, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fixture, settings, tolerance = TASKS[task]
    data: loop.TrainData = request.getfixturevalue(fixture)
    ddp = tiny_config(**DDP, **settings, batch_size=1)
    processes = launch(2, ddp.to_dict(), data, tmp_path / "ddp", tmp_path)
    # while the two ranks run: one process, batch 2 (= 2 ranks x 1)
    single_dir = tmp_path / "single"
    single_grads = []
    optimizer_step = loop._optimizer_step

    def save_gradients(ctx: object) -> None:
        single_grads.append({n: p.grad.clone() for n, p in ctx.model.named_parameters()})
        optimizer_step(ctx)

    monkeypatch.setattr(loop, "_optimizer_step", save_gradients)
    single_config = tiny_config(**DDP, **settings, batch_size=2)
    loop.train(single_config, data, single_dir, stop_after=2)
    wait_all(processes)
    for step in (1, 2):
        grads = [torch.load(tmp_path / f"rank{r}_grad{step}.pt", weights_only=True)
                 for r in (0, 1)]
        weights = [torch.load(tmp_path / f"rank{r}_step{step}.pt", weights_only=True)
                   for r in (0, 1)]
        # DDP averages the ranks' gradients: identical on both, equal to the batch of 2 up to
        # float32 summation order (the ranks run one thread each, sums over 256 x 256 pixels)
        assert max_difference(grads[0], grads[1]) == 0.0
        scale = max(float(g.abs().max()) for g in grads[0].values())
        assert max_difference(grads[0], single_grads[step - 1]) < tolerance * scale
        assert max_difference(weights[0], weights[1]) == 0.0
        saved = checkpoint_weights(tmp_path / "ddp", f"step_{step:06d}.pt")
        assert max_difference(weights[0], saved) == 0.0
    # Weights: AdamW's first update is about lr * sign(gradient), so a parameter whose true
    # gradient is ~0 (a conv bias right before InstanceNorm) moves by +-lr depending on the
    # rounding of its gradient. All others agree to float precision.
    single = checkpoint_weights(single_dir, "step_000001.pt")
    rank0 = torch.load(tmp_path / "rank0_step1.pt", weights_only=True)
    assert max_difference(rank0, single) <= 2 * single_config.lr * 1.001
    close = sum(int(((rank0[k] - single[k]).abs() < 1e-5).sum()) for k in rank0)
    assert close / sum(v.numel() for v in rank0.values()) > 0.9
    initial = kinds.kind_of(ddp).build(ddp).state_dict()
    assert max_difference(initial, single) > 1e-4  # the weights did move
    # only rank 0 logs
    ddp_rows = [r for r in read_metrics(tmp_path / "ddp") if r["split"] == "train"]
    single_rows = [r for r in read_metrics(single_dir) if r["split"] == "train"]
    assert [r["step"] for r in ddp_rows] == ["1", "2"]
    assert [float(r["lr"]) for r in ddp_rows] == [float(r["lr"]) for r in single_rows]
