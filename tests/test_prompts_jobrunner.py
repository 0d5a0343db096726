"""Prompts through a whole job (JobRunner): .pt embeddings and the pickle opt-in, tag notices, bad weights.

The runner loads the tiny LDM-layout checkpoint from a models folder of its own, and the conditioning it
hands the sampler is recorded by wrapping generate.denoise, so each test sees exactly what was encoded.
"""

from __future__ import annotations

import itertools

import pytest
import torch
from conftest import TINY_CHECKPOINT
from generation_support import clip_tokenizer
from paths_support import make_paths

from picotui.engine.errors import RequestError
from picotui.engine.events import Finished, Notice
from picotui.engine.jobs import runner as jobs
from picotui.engine.request import GenerationRequest
from picotui.engine.sampling import generate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def pt_models(tmp_path_factory, models_root, tiny_components):
    """checkpoints/ (the tiny checkpoint, linked) and embeddings/oldstyle.pt: an A1111-format pickle whose
    vectors are the token embeddings of "red dog", so with it the prompt must encode like "red dog"."""
    root = tmp_path_factory.mktemp("pt_models")
    (root / "checkpoints").mkdir()
    (root / "embeddings").mkdir()
    (root / "checkpoints" / TINY_CHECKPOINT).symlink_to(models_root / "checkpoints" / TINY_CHECKPOINT)
    ids = clip_tokenizer()("red dog", add_special_tokens=False)["input_ids"]
    vectors = tiny_components[2].get_input_embeddings().weight.detach()[ids].clone()
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": torch.nn.Parameter(vectors)},
                "name": "oldstyle", "step": 500, "sd_checkpoint": "0123456789", "sd_checkpoint_name": "tiny"},
               str(root / "embeddings" / "oldstyle.pt"))
    return root


@pytest.fixture
def recorded(monkeypatch):
    """The (cond, uncond) of every image the runner denoises."""
    seen = []
    real = generate.denoise

    def spy(pipe, cond, uncond, **kw):
        seen.append((cond.clone(), uncond.clone()))
        return real(pipe, cond, uncond, **kw)

    monkeypatch.setattr(generate, "denoise", spy)
    return seen


class Runner:
    """A JobRunner on the pt_models folder and the events it emitted; each job gets a new id."""

    def __init__(self, models, base, allow_pickle):
        self.events = []
        self.runner = jobs.JobRunner(make_paths(base, models=models), "cpu", allow_pickle, None, self.events.append)
        self.ids = itertools.count(1)

    def job(self, prompt, negative=""):
        """Runs one job; returns its id."""
        job_id = next(self.ids)
        request = GenerationRequest(prompt=prompt, negative_prompt=negative, checkpoint=TINY_CHECKPOINT,
                                    sampler="Euler", steps=1, width=64, height=64, seed=5)
        self.runner.run_job(job_id, request, lambda: False)
        return job_id

    def notices(self, job_id):
        return [e.message for e in self.events if isinstance(e, Notice) and e.job_id == job_id]

    def finished(self, job_id):
        return [e for e in self.events if isinstance(e, Finished) and e.job_id == job_id]


@pytest.fixture(scope="module")
def opted_in(pt_models, tmp_path_factory):
    return Runner(pt_models, tmp_path_factory.mktemp("opted_in"), allow_pickle=True)


@pytest.fixture(scope="module")
def not_opted_in(pt_models, tmp_path_factory):
    return Runner(pt_models, tmp_path_factory.mktemp("not_opted_in"), allow_pickle=False)


def test_pt_embedding_is_used_with_the_pickle_opt_in(opted_in, recorded):
    first = opted_in.job("a oldstyle cat")
    opted_in.job("a red dog cat")
    opted_in.job("a old style cat")  # roughly what the name spells as words
    with_embedding, spelled_out, as_words = (cond for cond, _ in recorded)
    assert torch.allclose(with_embedding, spelled_out, atol=1e-5)
    assert not torch.allclose(with_embedding, as_words, atol=1e-3)
    assert opted_in.notices(first) == [] and len(opted_in.finished(first)) == 1


def test_pt_embedding_without_the_opt_in_is_read_as_words_with_a_notice(not_opted_in, opted_in, recorded):
    first = not_opted_in.job("a oldstyle cat")
    (message,) = not_opted_in.notices(first)
    assert "oldstyle.pt" in message and "--allow-pickle" in message and "\n" not in message
    assert len(not_opted_in.finished(first)) == 1  # the job still makes its image
    assert not_opted_in.notices(not_opted_in.job("a red dog cat")) == []
    assert len(not_opted_in.notices(not_opted_in.job("a cat", "oldstyle"))) == 1  # the negative prompt too
    opted_in.job("a oldstyle cat")
    read_as_words, spelled_out, _, with_embedding = (cond for cond, _ in recorded)
    assert not torch.allclose(read_as_words, spelled_out, atol=1e-3)
    assert not torch.allclose(read_as_words, with_embedding, atol=1e-3)


def test_ignored_tags_are_reported_and_negative_tags_never_fail_the_job(not_opted_in, recorded):
    tagged = not_opted_in.job("a cat <hypernet:anime:1>", "blurry <lora:missing:lots>")
    messages = not_opted_in.notices(tagged)
    assert any("<hypernet:anime:1>" in m and "LoRA tags only" in m for m in messages)
    assert any("<lora:missing:lots>" in m and "negative prompt" in m for m in messages)
    not_opted_in.job("a cat ", "blurry ")
    (cond, uncond), (plain, plain_neg) = recorded
    assert torch.equal(cond, plain) and torch.equal(uncond, plain_neg)


def test_a_weight_that_overflows_float32_fails_the_job_with_a_request_error(not_opted_in, recorded):
    with pytest.raises(RequestError, match="outside the usable range"):
        not_opted_in.job("(cat:1" + "9" * 39 + ")")
    assert recorded == []
