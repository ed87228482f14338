"""Latent diffusion retrofitted online: the pipeline, the ℵ-space, the simulated user, the session."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from paths import SRC

pytest.importorskip("diffusers")

from afterlearner.errors import TaskError  # noqa: E402
from afterlearner.experiments.ldm import data, model  # noqa: E402
from afterlearner.experiments.ldm.judge import Judge  # noqa: E402
from afterlearner.experiments.ldm.sampler import Knobs, Sampler  # noqa: E402
from afterlearner.experiments.ldm.user import TargetUser  # noqa: E402

TINY_VAE = {
    "in_channels": 1,
    "out_channels": 1,
    "down_block_types": ["DownEncoderBlock2D"] * 2,
    "up_block_types": ["UpDecoderBlock2D"] * 2,
    "block_out_channels": [8, 8],
    "layers_per_block": 1,
    "latent_channels": 2,
    "norm_num_groups": 4,
    "sample_size": 16,
    "mid_block_add_attention": False,
}
TINY_UNET = {
    "sample_size": 8,
    "in_channels": 2,
    "out_channels": 2,
    "layers_per_block": 1,
    "block_out_channels": [8, 16],
    "down_block_types": ["DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 4,
    "num_class_embeds": 11,
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: these tiny models gain nothing from more, and on a busy 2-core machine
    several threads spinning against each other made the reduced run 20 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory):
    """Randomly initialised tiny components built from configs and saved as a pipeline directory."""
    directory = tmp_path_factory.mktemp("tiny-ldm")
    model.build(TINY_VAE, TINY_UNET, seed=3).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return model.load_pipeline(tiny_dir)


def test_saved_pipeline_is_a_diffusers_directory_and_reloads_identically(tiny_dir, tiny) -> None:
    index = json.loads((tiny_dir / "model_index.json").read_text())
    assert index["_class_name"] == "DigitLatentDiffusionPipeline"
    assert {"vae", "unet", "scheduler"} <= set(index)
    assert index["scheduler"][1] == "DDIMScheduler"
    fresh = model.build(TINY_VAE, TINY_UNET, seed=3)
    latents = torch.randn(2, *tiny.latent_shape, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(
        tiny(latents, class_label=4, num_inference_steps=3),
        fresh(latents, class_label=4, num_inference_steps=3),
        atol=1e-6,
    )


def test_pipeline_output_shape_range_and_determinism(tiny) -> None:
    latents = torch.randn(3, *tiny.latent_shape, generator=torch.Generator().manual_seed(1))
    images = tiny(latents, class_label=2, guidance_scale=3.0, eta=0.5, num_inference_steps=4, seed=7)
    assert images.shape == (3, 16, 16, 1)
    assert images.min() >= 0.0 and images.max() <= 1.0
    again = tiny(latents, class_label=2, guidance_scale=3.0, eta=0.5, num_inference_steps=4, seed=7)
    np.testing.assert_array_equal(images, again)
    other_seed = tiny(latents, class_label=2, guidance_scale=3.0, eta=0.5, num_inference_steps=4, seed=8)
    assert not np.array_equal(images, other_seed)  # eta > 0 injects seeded noise


def test_every_knob_changes_the_image(tiny) -> None:
    latents = torch.randn(1, *tiny.latent_shape, generator=torch.Generator().manual_seed(2))
    base = {"class_label": 1, "guidance_scale": 2.0, "eta": 0.0, "num_inference_steps": 5}
    reference = tiny(latents, **base)
    for change in ({"guidance_scale": 5.0}, {"eta": 1.0}, {"num_inference_steps": 9}, {"class_label": 8}):
        assert not np.allclose(reference, tiny(latents, **{**base, **change})), change
    assert not np.allclose(reference, tiny(latents + 0.5, **base))


def test_pipeline_rejects_bad_input(tiny, tmp_path) -> None:
    latents = torch.zeros(1, *tiny.latent_shape)
    with pytest.raises(ValueError, match="latents must have shape"):
        tiny(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="class_label"):
        tiny(latents, class_label=10)
    with pytest.raises(ValueError, match="eta"):
        tiny(latents, eta=1.5)
    with pytest.raises(ValueError, match="num_inference_steps"):
        tiny(latents, num_inference_steps=0)
    with pytest.raises(TaskError, match="model_index.json"):
        model.load_pipeline(tmp_path)


def test_sampler_aleph_writes_latent_and_knobs_and_restores(tiny) -> None:
    sampler = Sampler(tiny, class_label=5, seed=0, knobs=Knobs(steps=4))
    aleph = sampler.aleph()
    latent_size = int(np.prod(tiny.latent_shape))
    assert len(aleph) == latent_size + 3
    start = sampler.render()
    vector = aleph.identity().copy()
    vector[:latent_size] += 0.7
    vector[latent_size:] = [4.0, 0.3, 6.0]
    aleph.write(vector)
    assert (sampler.knobs.guidance_scale, sampler.knobs.eta, sampler.knobs.steps) == (4.0, 0.3, 6)
    moved = sampler.render()
    assert moved.shape == start.shape == (16, 16)
    assert not np.allclose(start, moved)
    aleph.restore()
    np.testing.assert_array_equal(sampler.render(), start)


def test_initial_latent_stays_on_the_noise_sphere_however_far_the_offsets_go(tiny) -> None:
    sampler = Sampler(tiny, class_label=5, seed=0, knobs=Knobs(steps=3))
    aleph = sampler.aleph(knobs=False)
    dimension = int(np.prod(tiny.latent_shape))
    for scale in (0.0, 1.0, 1e19):
        aleph.write(aleph.identity() + scale * np.linspace(-1.0, 1.0, dimension))
        latent = sampler.initial_latent()
        assert float(latent.norm()) == pytest.approx(dimension**0.5, rel=1e-5)
        assert np.isfinite(sampler.render()).all()
    aleph.restore()


def test_random_candidates_are_fresh_noise_within_the_knob_ranges(tiny) -> None:
    sampler = Sampler(tiny, class_label=5, seed=0)
    aleph = sampler.aleph()
    rng = np.random.default_rng(0)
    candidates = np.array([sampler.random_candidate(aleph, rng) for _ in range(200)])
    latent_size = int(np.prod(tiny.latent_shape))
    drawn = candidates[:, :latent_size] + sampler.latent.noise.numpy().ravel()
    assert abs(drawn.mean()) < 0.05 and abs(drawn.std() - 1.0) < 0.05
    assert candidates[:, -3].min() >= 0.0 and candidates[:, -3].max() <= 6.0
    assert candidates[:, -2].min() >= 0.0 and candidates[:, -2].max() <= 1.0
    assert set(candidates[:, -1]) <= set(map(float, range(3, 26)))


def test_target_user_prefers_the_target_itself_and_ranks_consistently() -> None:
    torch.manual_seed(0)
    judge = Judge().eval()
    digits = data.load()
    images = ((digits.held_images[:6, 0] + 1) / 2).numpy()
    user = TargetUser(judge, images[0])
    assert user.score(images[0]) == pytest.approx(1.0, abs=1e-5)
    assert user.best_of(list(images[1:4]) + [images[0]]) == 3
    ranking = user.ranking(images)
    assert ranking[0] == 0 and sorted(ranking) == list(range(6))
    scores = user.scores(images)
    second, last = ranking[1], ranking[-1]
    assert user.prefers(images[second], images[last]) == bool(scores[second] > scores[last])
    with pytest.raises(ValueError, match="images must be"):
        user.scores(np.zeros((2, 2, 16, 16)))


def test_digits_are_split_and_scaled() -> None:
    digits = data.load()
    assert digits.train_images.shape[1:] == (1, 16, 16)
    assert len(digits.train_images) + len(digits.held_images) == 1797
    assert len(digits.held_images) == data.HELD_OUT
    assert digits.train_images.min() >= -1.0 and digits.train_images.max() <= 1.0
    assert torch.equal(data.load().held_labels, digits.held_labels)


# -- online: the feedback session over the diffusion ℵ-space --------------------------------------
def test_session_on_a_pipeline_loaded_from_a_directory_persists_and_resumes(tiny_dir, tmp_path) -> None:
    from afterlearner.experiments.ldm.steering import DiffusionSteering
    from afterlearner.online import Best, NoneBetter

    def steering() -> DiffusionSteering:
        return DiffusionSteering(tiny_dir, class_label=7, seed=1, knobs=Knobs(steps=3))

    task = steering().task(k=3, budget=4)
    assert task.k == 3 and task.budget == 4 and "7" in task.prompt
    store = tmp_path / "clicks.sqlite"
    session = task.session(store=store, seed=2)
    first = session.propose()
    assert len(first.candidates) == 3
    for candidate in first.candidates:
        assert candidate.rendering.kind == "image" and candidate.rendering.data.startswith(b"\x89PNG")
    session.answer(first.id, Best(1))
    np.testing.assert_array_equal(session.best.vector, first.candidates[1].vector)
    second = session.propose()
    session.answer(second.id, NoneBetter())
    pending = session.propose()
    session.close()

    resumed = steering().task(k=3, budget=4).session(store=store, seed=2)
    assert resumed.progress().answers == 2
    np.testing.assert_array_equal(resumed.best.vector, first.candidates[1].vector)
    again = resumed.propose()
    assert again.id == pending.id
    np.testing.assert_array_equal(
        np.stack([c.vector for c in again.candidates]), np.stack([c.vector for c in pending.candidates])
    )
    assert [c.rendering.data for c in again.candidates] == [c.rendering.data for c in pending.candidates]
    resumed.close()


def test_session_explores_with_nearly_fresh_noise_first_the_offline_retrofit_locally(tiny) -> None:
    """The online session's latent step is of the order of the noise itself (its first proposals are
    nearly fresh draws, as re-rolling the seed would give); the offline retrofit's stays local."""
    from afterlearner.experiments.ldm.sampler import LATENT_STEP, SESSION_LATENT_STEP
    from afterlearner.experiments.ldm.steering import DiffusionSteering

    def first_proposal_cosines(steering: DiffusionSteering) -> np.ndarray:
        start = steering.sampler.latent.noise.numpy().ravel()
        size = start.size
        proposal = steering.task(k=4, budget=2).session(seed=0).propose()
        latents = np.stack([start + candidate.vector[:size] for candidate in proposal.candidates])
        return latents @ start / (np.linalg.norm(latents, axis=1) * np.linalg.norm(start))

    assert SESSION_LATENT_STEP >= 4 * LATENT_STEP
    online = DiffusionSteering(tiny, class_label=7, seed=1, knobs=Knobs(steps=3))
    assert next(entry for entry in online.aleph if entry.name == "noise").step == SESSION_LATENT_STEP
    local = DiffusionSteering(tiny, class_label=7, seed=1, knobs=Knobs(steps=3), latent_step=LATENT_STEP)
    assert first_proposal_cosines(online).mean() < 0.6  # ≈ 1/√(1 + 2²) = 0.45: far from the start
    assert first_proposal_cosines(local).mean() > 0.8  # ≈ 1/√(1 + 0.5²) = 0.89: around the start


def test_unconditional_steering_does_not_search_the_guidance_scale(tiny) -> None:
    from afterlearner.experiments.ldm.steering import DiffusionSteering

    steering = DiffusionSteering(tiny, class_label=None, knobs=Knobs(steps=3))
    assert [entry.name for entry in steering.aleph] == ["noise", "eta", "steps"]
    assert "any digit" in steering.task().prompt + steering.describe()
    picture = steering.image(steering.aleph.identity())
    np.testing.assert_array_equal(picture, steering.image(steering.aleph.identity().copy()))


@pytest.mark.slow
def test_feedback_serve_runs_the_ldm_task_file_and_takes_a_vote(tmp_path) -> None:
    """``afterlearner feedback serve .../ldm/task.py:factory`` as a real server process, voted on."""
    import os
    import subprocess
    import sys
    import time

    httpx = pytest.importorskip("httpx")
    command = [
        sys.executable,
        "-m",
        "afterlearner",
        "feedback",
        "serve",
        str(SRC / "afterlearner/experiments/ldm/feedback.py:factory"),
        "--store",
        str(tmp_path / "clicks.sqlite"),
        "--port",
        "0",
        "--k",
        "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        url, deadline, seen = None, time.monotonic() + 180, []
        while url is None and time.monotonic() < deadline:
            line = server.stdout.readline()
            if not line and server.poll() is not None:
                break
            seen.append(line)
            if line.startswith("open "):
                url = line.split()[1]
        assert url is not None, "".join(seen)
        base, token = url.split("/?token=")
        state = httpx.get(f"{base}/api/state", params={"token": token}, timeout=120).json()
        assert "3" in state["task"]["prompt"]
        candidates = state["proposal"]["candidates"]
        assert len(candidates) == 3
        assert all(c["kind"] == "image" and c["url"].startswith("data:image/png;base64,") for c in candidates)
        vote = {"proposal": state["proposal"]["id"], "feedback": {"kind": "best", "choice": 2}}
        after = httpx.post(f"{base}/api/answer", params={"token": token}, json=vote, timeout=120)
        assert after.status_code == 200
        assert after.json()["progress"]["answers"] == 1
        assert after.json()["best"]["url"] == candidates[2]["url"]
        replay = httpx.post(f"{base}/api/answer", params={"token": token}, json=vote, timeout=120)
        assert replay.status_code == 409
        assert httpx.get(f"{base}/api/state", timeout=30).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- the committed model: the experiment as `afterlearner reproduce ldm --reduced` runs it ---------
def test_committed_model_draws_the_prompted_class() -> None:
    from afterlearner.experiments.ldm.judge import load_judge, to_tensor
    from afterlearner.experiments.ldm.steering import PIPELINE_DIR

    pipeline = model.load_pipeline(PIPELINE_DIR)
    judge = load_judge(PIPELINE_DIR.parent / "judge.pt")
    latents = torch.randn(10, *pipeline.latent_shape, generator=torch.Generator().manual_seed(5))
    for label in (0, 3, 7):
        images = to_tensor(pipeline(latents, class_label=label, guidance_scale=2.0, num_inference_steps=5))
        predicted = judge(images).argmax(dim=1)
        assert (predicted == label).float().mean() >= 0.8, (label, predicted)


@pytest.mark.slow
def test_reproduce_ldm_reduced_writes_the_online_curve(tmp_path) -> None:
    from afterlearner import experiments
    from afterlearner.reproduce import run_experiment

    row, result = run_experiment(
        experiments.get("ldm"), budget=16, reduced=True, progress=False, out=tmp_path
    )
    assert row["aleph_scalars"] == 64 + 3 and row["evaluations"] == 16
    assert row["aleph_after"] <= row["aleph_before"]
    assert row["bound"] is None and "not applicable" in row["bound_note"]
    gain = row["test_gain"]  # one verdict per referee, paired: an interval over the 10 referees
    assert gain["n"] == 10 and gain["low"] <= gain["value"] <= gain["high"] and gain["p_value"] is not None
    assert row["test_before"] - row["test_after"] == pytest.approx(gain["value"])
    assert (tmp_path / "ldm-curve.png").stat().st_size > 10_000
    assert (tmp_path / "ldm-examples.png").stat().st_size > 5_000
    variants = json.loads((tmp_path / "ldm-curve.json").read_text())
    assert set(variants) == {"latent noise + knobs", "latent noise only"}
    for measured in variants.values():
        assert len(measured["session"]) == len(measured["random"]) == 2
        for session, random in zip(measured["session"], measured["random"], strict=True):
            assert len(session) == len(random) == 7
            assert session[0] == random[0]  # both start from the same image
            assert np.all(np.diff(session) >= 0)  # the current best never gets worse
            assert np.all(np.diff(random) >= 0)
        assert measured["summary"]["session_final"] > measured["summary"]["start"]
        assert np.asarray(measured["images"][0]["target"]).shape == (16, 16)


def test_the_referees_are_ten_independently_trained_judges() -> None:
    from afterlearner.experiments.ldm.judge import accuracy, load_judge
    from afterlearner.experiments.ldm.referees import WEIGHTS, load_referees

    panel = load_referees()
    assert len(panel) == 10
    first = load_judge(WEIGHTS / "judge_heldout.pt").state_dict()
    assert all(torch.equal(first[key], value) for key, value in panel[0].state_dict().items())
    users = load_judge(WEIGHTS / "judge.pt").state_dict()
    weights = [judge.state_dict()["body.0.weight"] for judge in panel] + [users["body.0.weight"]]
    assert all(not torch.equal(a, b) for i, a in enumerate(weights) for b in weights[i + 1 :])  # all distinct
    digits = data.load()
    assert all(accuracy(judge, digits.held_images, digits.held_labels) > 0.95 for judge in panel)


def test_panel_verdicts_score_one_image_with_every_referee() -> None:
    from afterlearner.experiments.ldm.curve import target_image, targets_of, user_for
    from afterlearner.experiments.ldm.referees import load_referees
    from afterlearner.experiments.ldm.task import PanelVerdicts

    class Still:
        """A steering whose sampler renders one fixed image (the target itself)."""

        def __init__(self, image: np.ndarray) -> None:
            self.sampler = self
            self.image = image

        def render(self) -> np.ndarray:
            return self.image

    target = targets_of(3, 1)[0]
    referees = [user_for(judge, target, 3) for judge in load_referees()]
    verdicts = PanelVerdicts(Still(target_image(target)), referees)(None)
    assert verdicts.shape == (10,) and np.allclose(
        verdicts, 0.0, atol=1e-6
    )  # the target is its own best likeness
    with pytest.raises(ValueError, match="at least 2"):
        PanelVerdicts(Still(target_image(target)), referees[:1])


@pytest.mark.slow
def test_the_referee_script_reproduces_the_committed_panel() -> None:
    from afterlearner.experiments.ldm.referees import load_referees, train_referees

    judges, accuracies = train_referees(seeds=(2,))
    committed = load_referees()[1].state_dict()
    assert all(torch.equal(value, committed[key]) for key, value in judges[2].state_dict().items())
    assert accuracies[2] > 0.95
