"""Code-translation experiment: grammar, tokens, beam search, CA/BLEU, a reduced retrofit, the HF path."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from afterlearner.experiments.code_translation import grammar
from afterlearner.experiments.code_translation.experiment import held_out_metrics
from afterlearner.experiments.code_translation.model import (
    Seq2Seq,
    beam_search,
    load_translator,
    pad,
)
from afterlearner.experiments.code_translation.task import (
    ALEPH_CHOICES,
    DEFAULT_ALEPH,
    SharedTranslations,
    TranslationLoss,
    bleu,
    computational_accuracy,
    experiment_cases,
    last_decoder_norms,
    make_cases,
    make_task,
    translation_task,
    validation_cases,
)
from afterlearner.experiments.code_translation.tokens import (
    EOS,
    SPECIALS,
    Vocabulary,
    javascript_tokens,
    python_code,
    python_tokens,
)
from afterlearner.retrofit import retrofit


def test_programs_are_reproducible_and_distinct():
    programs = grammar.generate(30, seed=5)
    assert programs == grammar.generate(30, seed=5)
    assert len({p.javascript for p in programs}) == 30
    assert all(p.python.startswith("def f(") and p.javascript.startswith("function f(") for p in programs)
    with pytest.raises(ValueError, match="count"):
        grammar.generate(0, seed=0)


def test_python_tokens_round_trip_to_equivalent_code():
    for program in grammar.generate(40, seed=6):
        rebuilt = grammar.Program(
            program.javascript, python_code(python_tokens(program.python)), program.arity
        )
        inputs = grammar.unit_inputs(program.arity)
        assert grammar.reference_outputs(rebuilt, inputs) == grammar.reference_outputs(program, inputs)
    with pytest.raises(ValueError, match="cannot tokenize"):
        javascript_tokens("let x = 'string';")


@pytest.mark.skipif(shutil.which("node") is None, reason="node (nodejs) is not installed")
def test_javascript_sources_compute_what_the_python_references_compute(tmp_path):
    programs = grammar.generate(40, seed=7)
    script = ["const results = [];"]
    for program in programs:
        inputs = json.dumps(grammar.unit_inputs(program.arity))
        script.append(
            f"results.push((() => {{ {program.javascript}\nreturn {inputs}.map(a => f(...a)); }})());"
        )
    script.append("console.log(JSON.stringify(results));")
    (tmp_path / "check.js").write_text("\n".join(script))
    output = subprocess.run(
        ["node", str(tmp_path / "check.js")], capture_output=True, text=True, timeout=60, check=True
    )
    expected = [grammar.reference_outputs(p, grammar.unit_inputs(p.arity)) for p in programs]
    assert json.loads(output.stdout) == expected


def test_beam_of_one_is_greedy_and_cached_decoding_matches_full():
    torch.manual_seed(0)
    vocabulary = Vocabulary([f"t{i}" for i in range(20)])
    model = Seq2Seq(len(vocabulary), len(vocabulary), width=32, heads=2, layers=2, feedforward=64).eval()
    source = pad([[5, 6, 7, 8, 2], [9, 10, 2]])
    with torch.no_grad():
        result = beam_search(model, source, vocabulary, beam_size=1, length_penalty=1.0, max_len=6)
        for row, tokens in enumerate(result):
            sequence = [vocabulary.index["<s>"]]
            for _ in range(len(tokens)):
                logits = model(source[row : row + 1], torch.tensor([sequence]))[0, -1]
                logits[[vocabulary.index["<pad>"], vocabulary.index["<s>"]]] = -float("inf")
                sequence.append(int(logits.argmax()))
            assert sequence[1:] == tokens
        wide = beam_search(model, source, vocabulary, beam_size=4, length_penalty=1.0, max_len=6)
    assert len(wide) == 2 and all(len(tokens) <= 6 for tokens in wide)
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(model, source, vocabulary, beam_size=0, length_penalty=1.0, max_len=3)


def test_metrics_of_reference_and_broken_translations():
    cases = make_cases(grammar.generate(6, seed=8))
    references = [case.reference for case in cases]
    assert computational_accuracy(cases, references) == [True] * 6
    assert bleu(cases, references) == pytest.approx(100.0)
    broken = [case.reference[:-3] + ["+", "1", "<nl>"] for case in cases]  # wrong last line
    assert not any(computational_accuracy(cases, broken))
    assert bleu(cases, broken) < 100.0
    with pytest.raises(ValueError, match="metric"):
        TranslationLoss(None, cases, "accuracy")  # type: ignore[arg-type]


def test_committed_translator_translates_and_sets_are_disjoint():
    translator = load_translator()
    aleph_cases, test_cases = experiment_cases(reduced=True)
    assert not {tuple(c.source) for c in aleph_cases} & {tuple(c.source) for c in test_cases}
    cases = make_cases(grammar.generate(60, seed=2))
    translations = translator.translate([case.source for case in cases])
    assert sum(computational_accuracy(cases, translations)) >= 5  # it learned something (about 20%)
    assert bleu(cases, translations) > 45
    assert SPECIALS[0] not in sum(translations, []) and EOS not in sum(translations, [])


@pytest.mark.parametrize("metric", ["ca", "bleu"])
def test_reduced_retrofit(metric):
    task = make_task(reduced=True, metric=metric)
    translator = task.loss.translator
    scalars = {"ca": 2 + len(translator.target), "bleu": 2 + 4}  # output-bias; one factor per norm gain
    assert DEFAULT_ALEPH == {"ca": "output-bias", "bleu": "norms"}
    assert len(task.aleph) == scalars[metric] and task.n == 16
    assert last_decoder_norms(translator.model) == [
        "decoder.layers.1.norm1.weight",
        "decoder.layers.1.norm2.weight",
        "decoder.layers.1.norm3.weight",
        "decoder.norm.weight",
    ]
    before = held_out_metrics(task)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=6,
        optimizer="DiagonalCMA",
        seed=1,
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
    )
    assert result.evaluations == 6 and result.best_loss <= result.initial_loss
    assert set(held_out_metrics(task)) == {"computational accuracy", "BLEU", "exact match"}
    if metric == "ca":
        assert task.loss() == pytest.approx(1 - task.loss.metrics()["computational accuracy"])
    result.restore()
    assert translator.beam_size == 1 and translator.length_penalty == 1.0
    assert held_out_metrics(task) == before


def test_other_aleph_choices():
    translator = load_translator()
    from afterlearner.experiments.code_translation.task import translation_aleph

    assert len(translation_aleph(translator, "decoding")) == 2
    assert len(translation_aleph(translator, "norms-elementwise")) == 2 + 4 * 64
    assert len(translation_aleph(load_translator(), "norms")) == 6
    assert len(translation_aleph(load_translator(), "output-bias")) == 2 + len(translator.target)
    with pytest.raises(ValueError, match="aleph must be one of"):
        translation_aleph(load_translator(), "everything")


def test_hf_seq2seq_from_a_local_directory(tmp_path):
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    from afterlearner.experiments.code_translation.hf import load_hf_translator, output_tokens

    cases = make_cases(grammar.generate(4, seed=9))
    words = sorted({t for case in cases for t in case.source + case.reference} - set(SPECIALS))
    vocabulary = {token: index for index, token in enumerate(SPECIALS + words)}
    word_level = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocabulary, unk_token="<unk>"))
    word_level.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=word_level, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    config = transformers.T5Config(
        vocab_size=len(vocabulary),
        d_model=16,
        d_kv=8,
        d_ff=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        pad_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    transformers.T5ForConditionalGeneration(config).save_pretrained(tmp_path / "t5")
    tokenizer.save_pretrained(tmp_path / "t5")

    translator = load_hf_translator(tmp_path / "t5", max_new_tokens=12)
    task = translation_task(translator, cases[:2], cases[2:], metric="bleu", aleph="norms")
    assert len(task.aleph) == 2 + 4  # beam size, length penalty, 3 LayerNorms of the last block + final norm
    assert "decoder.final_layer_norm.weight" in last_decoder_norms(translator.model)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=4,
        optimizer="OnePlusOne",
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
    )
    assert result.evaluations == 4 and result.best_loss <= result.initial_loss
    assert output_tokens("def f(a):\n    return a\n")[:3] == ["def", "f", "("]
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_hf_translator(tmp_path)


def test_guarded_retrofit_never_returns_a_candidate_with_lower_bleu():
    task = make_task(reduced=True, guards=True)
    assert task.name == "code-translation-ca-guarded" and set(task.guards) == {"bleu"}
    bleu_guard, tolerance, held_out_bleu = task.guards["bleu"]
    trained_bleu = bleu_guard(task.aleph.model)
    result = retrofit(
        task.aleph,
        task.loss,
        budget=12,
        optimizer="DiagonalCMA",
        seed=0,
        progress=False,
        test_loss=task.test_loss,
        n=task.n,
        guards=task.guards,
    )
    assert tolerance == 0.0 and result.evaluations == 12
    assert bleu_guard(task.aleph.model) <= trained_bleu  # on the ℵ-set, BLEU did not drop
    (check,) = result.guard_checks
    assert check.name == "bleu" and check.test_trained is not None
    with pytest.raises(ValueError, match="metric must be 'ca'"):
        make_task(reduced=True, metric="bleu", guards=True)


def test_shared_translations_translate_a_candidate_once():
    translator = load_translator()
    cases = make_cases(grammar.generate(4, seed=9))
    calls = []
    original = translator.translate

    def counting(sources):
        calls.append(len(sources))
        return original(sources)

    translator.translate = counting
    shared = SharedTranslations()
    ca = TranslationLoss(translator, cases, "ca", shared)
    bleu_loss = TranslationLoss(translator, cases, "bleu", shared)
    first = (ca(), bleu_loss())
    assert calls == [4] and (ca(), bleu_loss()) == first
    translator.beam_size = 3  # another candidate: translated again
    ca()
    with torch.no_grad():
        translator.model.decoder.norm.weight.mul_(1.5)
    bleu_loss()
    assert calls == [4, 4, 4]


@pytest.mark.slow
def test_the_three_splits_are_disjoint_and_none_of_their_programs_was_trained_on():
    from afterlearner.experiments.code_translation import task as task_module
    from afterlearner.experiments.code_translation.train import training_pairs

    trained = {tuple(source) for source, _ in training_pairs()}
    for reduced, sizes in ((True, (16, 16, 16)), (False, (100, 300, 600))):
        programs = task_module._splits(reduced)
        splits = [[tuple(javascript_tokens(p.javascript)) for p in split] for split in programs]
        assert tuple(len(set(split)) for split in splits) == sizes
        aleph, validation, test = (set(split) for split in splits)
        assert not (aleph & validation or aleph & test or validation & test)
        assert not (aleph | validation | test) & trained
    assert len(validation_cases(reduced=True)) == 16


def test_the_aleph_space_is_chosen_by_its_validation_gain_then_by_fewer_scalars():
    from afterlearner.experiments.code_translation.choose_aleph import Trial, choose, table

    def trial(aleph: str, scalars: int, gain: float) -> Trial:
        return Trial("ca", aleph, scalars, 200, 0.77, 0.7, 0.8, 0.8 - gain, gain, -0.01, 0.05, 0.5)

    trials = [trial("wide", 258, 0.01), trial("small", 6, 0.02), trial("mid", 57, 0.02)]
    assert choose(trials).aleph == "small"
    assert "| **small** (chosen) | 6 |" in table(trials)


def test_the_default_aleph_spaces_are_the_recorded_validation_choices():
    from afterlearner.experiments.code_translation.choose_aleph import Trial, choose

    recorded = Path(__file__).parents[2] / "docs" / "results" / "code-translation-aleph-choice.json"
    trials = [Trial(**row) for row in json.loads(recorded.read_text())]
    for metric in ("ca", "bleu"):
        of_metric = [t for t in trials if t.metric == metric]
        assert {t.aleph for t in of_metric} == set(ALEPH_CHOICES)
        assert choose(of_metric).aleph == DEFAULT_ALEPH[metric]
