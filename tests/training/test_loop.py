"""The fine-tuning loop on the smoke data: exact resume, NaN stop, embedding cache, LoRA,
learning-rate schedule, refusals before training.

Runs are tiny (Vegas only, batch 2, 2-4 steps, SAM 2 tiny at 64 px) and most skip the
tile-level validation (``fake_validation_row``); ``tests/cli/test_finetune.py`` runs the real
one.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aerialsam.errors import InputError
from aerialsam.models.lora import LoRALinear, add_lora, merge_lora
from aerialsam.models.sam2 import load_sam2, save_random_checkpoint
from aerialsam.models.sam2_calls import encode
from aerialsam.training import embedding_cache, kinds, loop, runs, tasks
from aerialsam.training import logs as step_logs
from aerialsam.training.embedding_cache import EmbeddingCache, checkpoint_identity, model_key
from aerialsam.training.train_config import TrainConfig
from tests.training_helpers import (
    assert_same_weights,
    checkpoint_weights,
    fake_validation_row,
    final_weights,
    read_metrics,
    tiny_config,
)

UNET = {"model": "unet", "steps": 4, "checkpoint_every": 2, "warmup_steps": 1}
SAM2 = {"model": "sam2", "regime": "decoder", "steps": 4, "checkpoint_every": 4}


@pytest.fixture(scope="module")
def data(smoke_train_data: loop.TrainData) -> loop.TrainData:
    return smoke_train_data


@pytest.fixture(autouse=True)
def no_tile_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loop, "validation_row", fake_validation_row)


@pytest.fixture(scope="module")
def unet_straight(data: loop.TrainData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A U-Net run of 4 steps without interruption."""
    run_dir = tmp_path_factory.mktemp("unet") / "straight"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loop, "validation_row", fake_validation_row)
        result = loop.train(tiny_config(**UNET), data, run_dir)
    assert result.step == 4
    return run_dir


def train_steps(run_dir: Path) -> list[int]:
    return [int(r["step"]) for r in read_metrics(run_dir) if r["split"] == "train"]


def test_straight_run_layout(unet_straight: Path) -> None:
    names = sorted(p.name for p in (unet_straight / runs.CHECKPOINTS).iterdir())
    assert names == ["last.pt", "step_000002.pt", "step_000004.pt"]
    assert train_steps(unet_straight) == [1, 2, 3, 4]
    run = runs.read_run(unet_straight)
    assert run["step"] == 4 and run["threshold"] == 0.5
    assert run["chip_size"] == 256 and run["overlap"] == 32
    assert_same_weights(final_weights(unet_straight), checkpoint_weights(unet_straight))


def test_logged_lr_follows_warmup_then_cosine(unet_straight: Path) -> None:
    config = tiny_config(**UNET)
    rows = [r for r in read_metrics(unet_straight) if r["split"] == "train"]
    # the logged lr is the one the next step will use (the scheduler has stepped)
    expected = [config.lr * loop.lr_lambda(s, 1, 4) for s in (1, 2, 3, 4)]
    assert [float(r["lr"]) for r in rows] == pytest.approx(expected)
    assert float(rows[-1]["lr"]) == pytest.approx(0.0, abs=1e-12)


def test_losses_are_read_every_few_steps_not_every_step(
        data: loop.TrainData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    original = step_logs.to_host

    def counting(batches: list) -> list:
        reads.append(len(batches))
        return original(batches)

    monkeypatch.setattr(step_logs, "to_host", counting)
    monkeypatch.setattr(loop, "SYNC_EVERY", 3)
    run_dir = tmp_path / "sync"
    loop.train(tiny_config(**{**UNET, "steps": 8, "checkpoint_every": 5}), data, run_dir)
    # steps 1-3 (every 3), 4-5 (checkpoint), 6 (every 3), 7-8 (the end): 4 reads for 8 steps
    assert reads == [3, 2, 1, 2]
    rows = [r for r in read_metrics(run_dir) if r["split"] == "train"]
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    assert all(math.isfinite(float(r["loss"])) and 0 <= float(r["pixel_iou"]) <= 1
               for r in rows)


def test_to_host_keeps_the_shape_of_steps() -> None:
    steps = [([torch.tensor(1.5), torch.tensor(2.5)],
              [{"union": torch.tensor(4), "inter": torch.tensor(1)},
               {"union": torch.tensor(2), "inter": torch.tensor(2)}]),
             ([torch.tensor(float("nan"))], [{"pixel_iou": torch.tensor(0.25)}])]
    (losses, logs), (nan_losses, nan_logs) = step_logs.to_host(steps)
    assert losses == [1.5, 2.5] and logs == [{"inter": 1.0, "union": 4.0},
                                             {"inter": 2.0, "union": 2.0}]
    assert math.isnan(nan_losses[0]) and nan_logs == [{"pixel_iou": 0.25}]
    assert step_logs.summarize(losses, logs) == (2.0, 0.5)  # pixels of both batches together
    # plain numbers join the tensors' one transfer
    assert step_logs.to_host([([torch.tensor(1.0)], [{"pixel_iou": 0.5}])]) == [
        ([1.0], [{"pixel_iou": 0.5}])]


def test_lr_lambda_values() -> None:
    values = [loop.lr_lambda(s, warmup=2, total=6) for s in range(8)]
    assert values[:2] == [0.5, 1.0]  # linear warm-up, reaching 1 at the last warm-up step
    # cosine over the remaining 4 steps: 1, cos^2(pi/8), 1/2, sin^2(pi/8), 0, then stays 0
    assert values[2:] == pytest.approx([1.0, math.cos(math.pi / 8) ** 2, 0.5,
                                        math.sin(math.pi / 8) ** 2, 0.0, 0.0])


def test_unet_resume_is_exact(unet_straight: Path, data: loop.TrainData,
                              tmp_path: Path) -> None:
    run_dir = tmp_path / "split"
    first = loop.train(tiny_config(**UNET), data, run_dir, stop_after=2)
    assert first.step == 2 and not (run_dir / runs.MODEL_FILE).exists()
    assert "threshold" not in runs.read_run(run_dir)
    second = loop.train(tiny_config(**UNET), data, run_dir, resume=True)
    assert second.step == 4 and second.metrics["threshold"] == 0.5
    assert_same_weights(final_weights(run_dir), final_weights(unet_straight))
    assert train_steps(run_dir) == [1, 2, 3, 4]
    straight = [r["loss"] for r in read_metrics(unet_straight) if r["split"] == "train"]
    assert [r["loss"] for r in read_metrics(run_dir) if r["split"] == "train"] == straight


def nan_at_call(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """Make the ``call``-th training loss (1-based) NaN, keeping its graph."""
    original = tasks.SegmentationLoss.forward
    calls = {"n": 0}

    def forward(self: tasks.SegmentationLoss, logits: torch.Tensor,
                target: torch.Tensor) -> torch.Tensor:
        calls["n"] += 1
        loss = original(self, logits, target)
        return loss * float("nan") if calls["n"] == call else loss

    monkeypatch.setattr(tasks.SegmentationLoss, "forward", forward)


def test_nan_loss_stops_keeps_last_good_checkpoint_and_resumes(
        unet_straight: Path, data: loop.TrainData, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "nan"
    with monkeypatch.context() as patch:
        nan_at_call(patch, 4)
        with pytest.raises(loop.TrainingError) as caught:
            loop.train(tiny_config(**UNET), data, run_dir)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(str(run_dir)), message
    assert "nan" in message and "step 4" in message
    # it names a checkpoint that exists, and only options that exist (--lr; amp was off)
    assert f"the newest checkpoint is {run_dir / runs.CHECKPOINTS / 'step_000002.pt'}" in message
    assert "--lr" in message and "--amp" not in message and "amp: off" not in message
    # step 3 was logged but never checkpointed; the last good checkpoint is step 2's
    assert train_steps(run_dir) == [1, 2, 3]
    assert not (run_dir / runs.MODEL_FILE).exists()
    last = runs.load_checkpoint(run_dir / runs.CHECKPOINTS / runs.LAST)
    assert last["step"] == 2
    assert_same_weights(last["model"], checkpoint_weights(unet_straight, "step_000002.pt"))
    # an interrupted run resumes from there: step 3 is logged once, weights as if unbroken
    loop.train(tiny_config(**UNET), data, run_dir, resume=True)
    assert train_steps(run_dir) == [1, 2, 3, 4]
    assert_same_weights(final_weights(run_dir), final_weights(unet_straight))


def test_nan_loss_before_any_checkpoint_says_there_is_none(
        data: loop.TrainData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run_dir = tmp_path / "nan_first"
    nan_at_call(monkeypatch, 1)
    with pytest.raises(loop.TrainingError) as caught:
        loop.train(tiny_config(**UNET, amp="bf16"), data, run_dir)
    message = str(caught.value)
    assert len(message.splitlines()) == 1 and "at step 1" in message
    assert "no checkpoint was saved yet" in message and "last.pt" not in message
    assert not (run_dir / runs.CHECKPOINTS).exists()
    # amp is a YAML key, not a command option
    assert "`amp: off` in its YAML configuration (this run used bf16)" in message
    assert "--amp" not in message


def straight_unet(checkpoint_every: int) -> TrainConfig:
    """The configuration of ``unet_straight`` with checkpoints at other steps (checkpoints
    draw no random numbers: the weights stay those of ``unet_straight``)."""
    return tiny_config(**{**UNET, "checkpoint_every": checkpoint_every})


def damage(path: Path, how: str) -> None:
    """Truncate a checkpoint, overwrite it with garbage or with a code-running pickle."""
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(os.urandom(4096))
    else:
        raise ValueError(how)


@pytest.mark.parametrize(("case", "stop", "resumes_at"), [
    ("no_last", 1, 1),          # died after step_000001.pt, before its first whole last.pt
    ("stale_last", 3, 3),       # died between step_000003.pt and last.pt: last.pt is step 2
    ("truncated_last", 3, 3),   # last.pt cut short: named, skipped, step_000003.pt used
    ("all_damaged", 2, 0),      # nothing whole: the run starts again from its run.json
])
def test_resume_takes_the_newest_whole_checkpoint(
        case: str, stop: int, resumes_at: int, unet_straight: Path, data: loop.TrainData,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run_dir = tmp_path / case
    config = straight_unet(checkpoint_every=1)
    loop.train(config, data, run_dir, stop_after=stop)
    folder = run_dir / runs.CHECKPOINTS
    if case == "no_last":
        (folder / runs.LAST).unlink()
    elif case == "stale_last":
        shutil.copy(folder / "step_000002.pt", folder / runs.LAST)
    elif case == "truncated_last":
        damage(folder / runs.LAST, "truncated")
    else:
        for path in folder.iterdir():
            damage(path, "garbage" if path.name == runs.LAST else "truncated")
    # what a writer killed mid-checkpoint leaves (its process is gone)
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    partial = folder / f".last.{dead.pid}-abcd1234.part.pt"
    partial.write_bytes(b"left by a kill -9")
    caplog.set_level("INFO", logger="aerialsam.training")
    result = loop.train(config, data, run_dir, resume=True)
    assert result.step == 4
    assert_same_weights(final_weights(run_dir), final_weights(unet_straight))
    assert train_steps(run_dir) == [1, 2, 3, 4]
    losses = [r["loss"] for r in read_metrics(run_dir) if r["split"] == "train"]
    assert losses == [r["loss"] for r in read_metrics(unet_straight) if r["split"] == "train"]
    assert not partial.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    resumed = [r.getMessage() for r in caplog.records if r.getMessage().startswith("resuming")]
    if resumes_at:
        assert resumed == [f"resuming {case} at step {resumes_at} of 4 from "
                           f"step_{resumes_at:06d}.pt"]
    else:
        assert not resumed and warnings[-1].endswith("starting again from step 0 with the "
                                                     "saved configuration")
    damaged = {"no_last": [], "stale_last": [], "truncated_last": [runs.LAST],
               "all_damaged": [runs.LAST, "step_000002.pt", "step_000001.pt"]}[case]
    skipped = [w for w in warnings if w.startswith("skipping a damaged checkpoint")]
    assert len(skipped) == len(damaged)
    for warning, name in zip(skipped, damaged, strict=True):
        assert f"{folder / name}: not a readable PyTorch checkpoint" in warning, warning


def test_a_run_killed_while_finishing_finishes_on_resume(
        unet_straight: Path, data: loop.TrainData, tmp_path: Path) -> None:
    """model.pt written, run.json not yet final: the run is not done, resuming finishes it."""
    run_dir = tmp_path / "finishing"
    shutil.copytree(unet_straight, run_dir)
    config = tiny_config(**UNET)
    runs.write_run_json(run_dir, config, chip_size=256, overlap=32)  # as before _finish
    result = loop.train(config, data, run_dir, resume=True)
    assert result.step == 4 and runs.read_run(run_dir)["step"] == 4
    assert_same_weights(final_weights(run_dir), final_weights(unet_straight))


def test_checkpoint_that_is_no_training_state_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"model": {}, "step": 3}, path)
    with pytest.raises(InputError) as caught:
        runs.load_checkpoint(path)
    assert str(caught.value) == (f"{path}: not a training checkpoint (no optimizer, scheduler, "
                                 "scaler, rng); resuming skips it")
    torch.save([1, 2], path)
    with pytest.raises(InputError, match="not a training checkpoint"):
        runs.load_checkpoint(path)
    assert runs.resume_checkpoint(tmp_path) is None  # no checkpoints/ folder at all


def test_resuming_a_finished_run(unet_straight: Path, data: loop.TrainData,
                                 tmp_path: Path) -> None:
    run_dir = tmp_path / "finished"
    shutil.copytree(unet_straight, run_dir)
    with pytest.raises(InputError, match="finished already") as caught:
        loop.train(tiny_config(**UNET), data, run_dir, resume=True)
    assert str(caught.value).startswith(str(run_dir))
    assert_same_weights(final_weights(run_dir), final_weights(unet_straight))


@pytest.mark.parametrize(("prompt", "steps"), [("none", 4), ("box", 2)])
def test_sam2_decoder_resume_with_embedding_cache_is_exact(
        prompt: str, steps: int, data: loop.TrainData, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    encoded: list[int] = []
    original = embedding_cache.encode

    def counting_encode(model: torch.nn.Module, images: torch.Tensor) -> object:
        encoded.append(len(images))
        return original(model, images)

    monkeypatch.setattr(embedding_cache, "encode", counting_encode)
    config = tiny_config(**{**SAM2, "steps": steps}, prompt=prompt)
    assert config.uses_cache
    loop.train(config, data, tmp_path / "straight")
    # 2 chips a step, all different in the first epoch (18 chips): every one a miss
    assert sum(encoded) == 2 * steps
    cache_dirs = list((tmp_path / ".embedding_cache").iterdir())
    assert len(cache_dirs) == 1 and len(list(cache_dirs[0].glob("*.pt"))) == 2 * steps
    encoded.clear()
    loop.train(config, data, tmp_path / "split", stop_after=steps // 2)
    loop.train(config, data, tmp_path / "split", resume=True)
    assert sum(encoded) == 0  # the same chips again: every batch from the cache
    assert_same_weights(final_weights(tmp_path / "split"), final_weights(tmp_path / "straight"))
    assert train_steps(tmp_path / "split") == list(range(1, steps + 1))


def test_refusals_before_training(data: loop.TrainData, tmp_path: Path) -> None:
    config = tiny_config(model="unet", steps=2)
    with pytest.raises(InputError, match="no run.json"):
        loop.train(config, data, tmp_path / "empty", resume=True)
    runs.write_run_json(tmp_path / "taken", config)
    with pytest.raises(InputError, match="holds a run already") as caught:
        loop.train(config, data, tmp_path / "taken")
    assert str(caught.value).startswith(str(tmp_path / "taken"))
    with pytest.raises(InputError, match=r"other settings \(lr, steps\)"):
        loop.train(tiny_config(model="unet", steps=3, lr=1e-3), data, tmp_path / "taken",
                    resume=True)


# --- the embedding cache, on its own ----------------------------------------------------

@pytest.fixture(scope="module")
def sam2_64() -> torch.nn.Module:
    return load_sam2("tiny", "random", "cpu", 64)


def test_embedding_cache_misses_then_hits_and_notices_changed_chips(
        sam2_64: torch.nn.Module, tmp_path: Path) -> None:
    files = {}
    for name in ("a", "b"):
        files[name] = tmp_path / f"{name}.tif"
        files[name].write_bytes(b"chip " + name.encode())
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cache = EmbeddingCache(tmp_path / "cache", sam2_64, files)
    first = cache.features(["a", "b"], images)
    assert (cache.hits, cache.misses) == (0, 2)
    with torch.no_grad():
        fresh = encode(sam2_64, images)
    # stored (and returned) in float16
    assert torch.equal(first.image_embed, fresh.image_embed.half().float())
    again = cache.features(["b", "a"], images.flip(0))
    assert (cache.hits, cache.misses) == (2, 2)
    assert torch.equal(again.image_embed, first.image_embed.flip(0))
    for level, cached in zip(first.high_res, again.high_res, strict=True):
        assert torch.equal(cached, level.flip(0))
    # a rewritten chip (new mtime) is encoded again; the other still hits
    stat = files["a"].stat()
    os.utime(files["a"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    cache.features(["a", "b"], images)
    assert (cache.hits, cache.misses) == (3, 3)
    files["b"].write_bytes(b"another chip b")  # new size
    cache.features(["a", "b"], images)
    assert (cache.hits, cache.misses) == (4, 4)


def test_checkpoint_identity_and_model_key(tmp_path: Path) -> None:
    one = save_random_checkpoint("tiny", tmp_path / "one.pt", image_size=64, seed=0)
    copy, two = tmp_path / "copy.pt", tmp_path / "two.pt"
    copy.write_bytes(one.read_bytes())
    content = bytearray(one.read_bytes())
    content[-100] ^= 1  # another checkpoint: one bit of one weight differs
    two.write_bytes(bytes(content))
    assert checkpoint_identity(one) == checkpoint_identity(copy) != checkpoint_identity(two)
    assert checkpoint_identity("random", seed=0) == "random-0"
    keys = {model_key("tiny", 64, checkpoint_identity(path)) for path in (one, copy, two)}
    assert len(keys) == 2
    assert model_key("tiny", 64, "random-0") != model_key("tiny", 128, "random-0")
    assert model_key("tiny", 64, "random-0").startswith("tiny_64_")


# --- LoRA ----------------------------------------------------------------------------------

def encoder_output(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return encode(model, images).image_embed


def test_lora_starts_at_the_base_model_and_merges_exactly(tmp_path: Path) -> None:
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    model = load_sam2("tiny", "random", "cpu", 64)
    base = encoder_output(model, images)
    count = add_lora(model.image_encoder, rank=4, alpha=8.0, seed=0)
    assert count == sum(isinstance(m, LoRALinear) for m in model.modules()) > 0
    trainable = [n for n, p in model.image_encoder.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(("lora_a", "lora_b")) for n in trainable)
    assert torch.equal(encoder_output(model, images), base)  # B = 0: the base model exactly
    with torch.no_grad():  # as training would: move the adapters away from zero
        for module in model.modules():
            if isinstance(module, LoRALinear):
                module.lora_b.normal_(0, 0.02, generator=torch.Generator().manual_seed(2))
    adapted = encoder_output(model, images)
    assert not torch.allclose(adapted, base, atol=1e-3)
    assert merge_lora(model) == count
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(encoder_output(model, images), adapted, atol=1e-5)


def test_lora_run_model_loads_into_plain_sam2(tmp_path: Path) -> None:
    config = tiny_config(regime="lora", steps=2)
    model = kinds.kind_of(config).build(config).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("lora_b"):
                param.normal_(0, 0.02)
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    adapted = encoder_output(model, images)
    run_dir = tmp_path / "lora"
    runs.write_run_json(run_dir, config, threshold=0.5)
    runs.save_final_model(run_dir, model, config)
    assert not any("lora" in key for key in final_weights(run_dir))
    loaded, run = runs.load_run_model(run_dir)
    assert run["config"] == config
    assert not any(isinstance(m, LoRALinear) for m in loaded.modules())
    assert torch.allclose(encoder_output(loaded, images), adapted, atol=1e-5)
