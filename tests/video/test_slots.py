"""The object-centric stochastic predictor: features, seeded training, seeded stochastic continuations, no pymunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ipe.errors import InputError
from ipe.scene import Ball
from ipe.stimuli.towers import generate_towers
from ipe.video.frames import Camera, hex_to_rgb, STATIC_COLOUR
from ipe.video.models import load_model, save_model
from ipe.video.slots import (NEIGHBOURS, SlotConfig, SlotPredictor, features, generate_slot_videos, model_config,
                             read_slots, render_continuation, rollout_states, sample_rollouts, train_slot_model,
                             training_steps, REST, add_input_noise, deadband, judge_continuations)


def short(stim, horizon: float = 0.5):
    """The stimulus with a shorter horizon (fewer frames: a cheaper test)."""
    from dataclasses import replace

    sim = replace(stim.scene.simulation, horizon=horizon)
    return replace(stim, scene=replace(stim.scene, simulation=sim))


@pytest.fixture(scope="module")
def towers():
    return list(generate_towers(4, seed=21, balanced=True))


@pytest.fixture(scope="module")
def trained(towers):
    cfg = SlotConfig(samples=1, epochs=1, hidden=16, batch_size=64, seed=3)
    model, log = train_slot_model(cfg, train_stimuli=towers[:2], threads=1)
    return model, log, cfg


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_slots_and_contact_features(towers):
    s = towers[0]
    sl = read_slots(s)
    assert sl.size.shape == (10, 2) and sl.pose.shape == (10, 3) and sl.ground == pytest.approx(0.0)
    pos = torch.tensor([[[0.0, 0.5], [0.0, 1.5], [9.0, 0.5]]])
    size = torch.tensor([[[3.0, 1.0], [3.0, 1.0], [1.0, 1.0]]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    node, edge, nbr = features(pos, torch.zeros(1, 3), torch.zeros(1, 3, 2), torch.zeros(1, 3), size,
                               torch.zeros(1), mask)
    assert node.shape == (1, 3, 8) and edge.shape == (1, 3, min(NEIGHBOURS, 2), 26)
    assert node[0, 0, -1] == pytest.approx(0.0) and node[0, 1, -1] == pytest.approx(1.0)  # height of lowest corner
    assert nbr[0, 0, 0] == 1 and nbr[0, 1, 0] == 0  # the block above is the nearest of the block below
    # block 1's lower corners lie on block 0's top edge: v = 1 in block 0's frame (a contact)
    j_in_i = edge[0, 0, 0, 10:18].view(4, 2)
    assert torch.allclose(j_in_i[:2, 1], torch.ones(2))
    with pytest.raises(InputError, match="blocks only"):
        from dataclasses import replace

        read_slots(replace(s, scene=s.scene.with_bodies([Ball(id="ball", position=(0.0, 0.5), radius=0.1)])))


def test_training_is_seeded(towers, trained):
    model, log, cfg = trained
    again, log2 = train_slot_model(cfg, train_stimuli=towers[:2], threads=1)
    assert _same(model, again) and log["train_loss"] == log2["train_loss"]
    other, _ = train_slot_model(SlotConfig(samples=1, epochs=1, hidden=16, batch_size=64, seed=4),
                                train_stimuli=towers[:2], threads=1)
    assert not _same(model, other)
    assert 0 < log["n_steps"] <= 2 * 60 and np.isfinite(log["train_loss"]).all()


def test_training_steps_from_ipes_rollouts(towers):
    from dataclasses import replace

    cfg = SlotConfig(samples=1, rest_keep=1.0)
    stable = next(s for s in towers if s.metadata["stable"])
    data = training_steps([stable], cfg)
    assert data["pos"].shape == (60, 10, 2) and data["target"].shape == (60, 10, 3)  # 61 frames at 30 fps
    few = training_steps([stable], replace(cfg, rest_keep=0.0))
    moving = (few["vel"].abs().amax(-1) > 0).any(-1) | few["moves"].any(-1)
    assert moving.all() and len(few["pos"]) < 60  # only steps in which something moves are left
    # the first step starts from rest: velocity 0
    assert float(data["vel"][0].abs().max()) == 0.0


def test_deadband_makes_rest_exact():
    poses = np.zeros((6, 2, 3))
    poses[:, 0, 1] = -0.00015 * np.arange(6)             # block 0 settles by 0.15 mm per frame (scale 0.1 m)
    poses[:, 1, 0] = [0.0, 0.0005, 0.0011, 0.02, 0.05, 0.09]  # block 1 creeps, then slides
    out = deadband(poses, 0.1)
    assert (out[:, 0] == 0).all()                        # settling below REST × scale is rest
    assert out[:, 1, 0].tolist() == [0.0, 0.0, 0.0011, 0.02, 0.05, 0.09]
    assert REST * 0.1 == pytest.approx(0.001)


def test_continuations_are_stochastic_seeded_and_never_simulate(trained, towers, monkeypatch):
    model, _, _ = trained
    import pymunk

    def no_pymunk(*a, **k):
        raise AssertionError("the slot model called pymunk at prediction time")

    monkeypatch.setattr(pymunk, "Space", no_pymunk)
    s = towers[2]
    a = sample_rollouts(model, s, 31, 3, seed=5)
    b = sample_rollouts(model, s, 31, 3, seed=5)
    c = sample_rollouts(model, s, 31, 3, seed=6)
    assert a.shape == (3, 31, 10, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # continuations of one stimulus differ
    assert np.array_equal(a[:, 0], np.repeat(read_slots(s).pose[None], 3, 0))  # they start at the stimulus
    assert np.array_equal(sample_rollouts(model, s, 31, [1, 2], seed=5), sample_rollouts(model, s, 31, [1, 2], seed=5))


def test_rendered_blocks_keep_shape_and_ground_stays(trained, towers):
    model, _, _ = trained
    s = towers[1]
    cam = Camera.for_stimulus(s, 64)
    poses = sample_rollouts(model, s, 21, 1, seed=0)[0]
    assert np.ptp(poses[:, :, 1], axis=0).max() > 0.05  # the blocks did move
    frames = render_continuation(s, poses, cam)
    assert frames.shape == (21, 64, 64, 3)
    ground_row = int(cam.to_pixels(np.array([[0.0, -0.05]]))[0, 1])
    grey = np.array(hex_to_rgb(STATIC_COLOUR))
    # the ground is there in every frame, however the blocks moved
    for f in frames:
        assert (np.abs(f[ground_row].astype(int) - grey).max(1) < 3).mean() > 0.5
    # each slot is drawn as its block (same size, same colour) by the renderer of `ipe render --video`
    from ipe.video.frames import draw_frame

    assert np.array_equal(frames[-1], draw_frame(s, poses[-1], np.ones(10, dtype=bool), cam))


def test_generate_save_load_and_read(trained, towers, tmp_path):
    model, log, cfg = trained
    p = save_model(model, tmp_path / "slots.pt", "slots", model_config(model, cfg), log)
    kind, loaded, data = load_model(p)
    assert kind == "slots" and isinstance(loaded, SlotPredictor) and _same(model, loaded)
    few = [short(s) for s in towers[2:4]]
    made = generate_slot_videos(loaded, data["config"], few, tmp_path / "gen", samples=3, size=48, seed=1)
    assert len(made) == 6 and (made["status"] == "ok").all()
    from ipe.video.readout import readout

    summary, per_video = readout(tmp_path / "gen", few)
    # several continuations per stimulus: the judgment is a share of them, not a single 0/1
    assert (summary["n_samples"] == 3).all()
    assert set(per_video["sample"]) == {0, 1, 2}


def test_rollout_states_without_early_stop(towers, monkeypatch):
    import ipe.video.frames as frames
    from ipe.noise import NoiseParams

    seen = []
    real = frames.run_sample

    def spy(*a, **k):
        seen.append(k.get("early_stop"))
        return real(*a, **k)

    monkeypatch.setattr(frames, "run_sample", spy)
    s = towers[0]
    full, vis = rollout_states(s, 30.0, NoiseParams(), 0, 0, early_stop=False)
    stopped, _ = rollout_states(s, 30.0, NoiseParams(), 0, 0)
    assert seen == [False, True] and full.shape == stopped.shape == (61, 10, 3) and vis.all()
    assert np.allclose(full[0], stopped[0])


def test_deadband_keeps_a_block_moving_from_its_start_to_its_final_rest():
    poses = np.zeros((8, 1, 3))
    # starts to tip slowly (0.4 mm per frame, under REST × scale), speeds up, then lands and shivers within 1 mm
    poses[:, 0, 0] = [0.0, 0.0004, 0.0008, 0.0012, 0.0020, 0.0040, 0.0070, 0.0070]
    poses[7, 0, 1] = 0.0003
    out = deadband(poses, 0.1)
    assert out[:3, 0, 0].tolist() == [0.0, 0.0, 0.0]          # at rest until it has moved 1 mm
    assert np.array_equal(out[3:7, 0], poses[3:7, 0])        # then it moves at every frame, however slowly
    assert np.array_equal(out[7, 0], poses[6, 0])             # and keeps its final rest exactly


def test_falling_blocks_of_ipes_rollouts_move_without_pausing(towers):
    from ipe.noise import NoiseParams

    falling = next(s for s in towers if not s.metadata["stable"])
    sl = read_slots(falling)
    poses = deadband(rollout_states(falling, 30.0, NoiseParams(), 0, 0)[0], sl.scale)
    moves = np.abs(np.diff(poses, axis=0)).max(-1) > 0          # (F - 1, n)
    assert moves.any()
    for i in np.nonzero(moves.any(0))[0]:
        steps = np.nonzero(moves[:, i])[0]
        assert steps[-1] - steps[0] + 1 == len(steps), f"block {i} stops and starts again: {steps}"


def test_input_noise_moves_only_moving_blocks_and_keeps_the_next_pose():
    from dataclasses import replace

    rng = np.random.default_rng(0)
    T, n = 5, 3
    data = {"pos": torch.tensor(rng.random((T, n, 2)), dtype=torch.float32),
            "ang": torch.zeros(T, n), "vel": torch.zeros(T, n, 2), "spin": torch.zeros(T, n),
            "target": torch.zeros(T, n, 3), "moves": torch.zeros(T, n, dtype=torch.bool),
            "mask": torch.ones(T, n, dtype=torch.bool)}
    data["vel"][:, 0] = 0.3                              # block 0 falls; block 1 starts to move; block 2 rests
    data["target"][:, 0, 1] = -0.1
    data["moves"][:, :2] = True
    cfg = SlotConfig(noise_pos=0.05, noise_vel=0.02, seed=1)
    out = add_input_noise(data, cfg)
    assert torch.equal(out["pos"][:, 2], data["pos"][:, 2]) and torch.equal(out["vel"][:, 2], data["vel"][:, 2])
    assert not torch.equal(out["pos"][:, :2], data["pos"][:, :2])
    nxt = lambda d: torch.cat([d["pos"] + d["vel"] + d["target"][..., :2],  # noqa: E731
                               (d["ang"] + d["spin"] + d["target"][..., 2])[..., None]], -1)
    assert torch.allclose(nxt(out), nxt(data), atol=1e-6)  # the target still lands on the true next pose
    again = add_input_noise(data, cfg)
    assert all(torch.equal(out[k], again[k]) for k in out)
    assert add_input_noise(data, replace(cfg, noise_pos=0.0, noise_vel=0.0)) is data


def test_judge_continuations_reads_the_poses(trained, towers):
    from ipe.queries import fall_threshold

    model, _, _ = trained
    few = [short(s) for s in towers[:2]]
    j = judge_continuations(model, few, samples=3, seed=2)
    assert list(j.columns) == ["stimulus_id", "sample", "count_fallen", "falls"] and len(j) == 6
    poses = sample_rollouts(model, few[1], 16, 3, seed=2)
    count = ((poses[:, 0, :, 1] - poses[:, -1, :, 1]) > fall_threshold(few[1].scene)).sum(1)
    assert j[j["stimulus_id"] == few[1].id]["count_fallen"].tolist() == count.tolist()
    assert (j["falls"] == (j["count_fallen"] > 0)).all()


def test_a_resting_block_wakes_only_at_the_start_or_beside_a_moving_block():
    from ipe.video.slots import WAKE_STEPS, can_move

    vel = torch.zeros(2, 4, 2)
    spin = torch.zeros(2, 4)
    vel[:, 0, 1] = -0.2                                   # block 0 falls
    nbr = torch.tensor([[1], [0], [3], [2]]).expand(2, -1, -1)  # 1 is beside 0; 2 and 3 only beside each other
    early, late = can_move(vel, spin, nbr, torch.tensor([0, WAKE_STEPS]))
    assert early.tolist() == [True, True, True, True]     # a tower that is not stable starts to tip at once
    assert late.tolist() == [True, True, False, False]    # later, only a moving block and its neighbours
    spin[1, 3] = 0.01
    assert can_move(vel, spin, nbr, torch.tensor([WAKE_STEPS, WAKE_STEPS]))[1].tolist() == [True, True, True, True]
