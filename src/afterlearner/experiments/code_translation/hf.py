"""The real-model path: a Hugging Face seq2seq translator (T5, Marian, ...) from a local directory.

Users with a real code-translation checkpoint saved with ``save_pretrained`` (model and tokenizer)
retrofit it with the same ℵ-losses and ℵ-space as the small model::

    translator = load_hf_translator("path/to/model")        # local files only, never a download
    task = translation_task(translator, aleph_cases, test_cases, metric="ca")

Beam size and length penalty are passed to ``generate``; the LayerNorm gains searched are those
of the last decoder block and the decoder's final norm (found by name, e.g. T5's
``decoder.block.N.layer.*.layer_norm`` and ``decoder.final_layer_norm``). The model's output text
is read as Python source, or as space-separated tokens of :mod:`.tokens` if it contains ``<nl>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from afterlearner.experiments.code_translation.tokens import NEWLINE, python_tokens


def output_tokens(text: str) -> list[str]:
    """Python tokens of a generated text (token format or Python source; unreadable text kept as words)."""
    if NEWLINE in text:
        return text.split()
    try:
        return python_tokens(text)
    except ValueError:
        return text.split()


class HFTranslator:
    """A transformers seq2seq model + tokenizer with searchable ``beam_size`` and ``length_penalty``."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        max_new_tokens: int = 96,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_new_tokens = max_new_tokens

    def translate(self, sources: list[list[str]], batch: int = 32) -> list[list[str]]:
        outputs: list[list[str]] = []
        for start in range(0, len(sources), batch):
            texts = [" ".join(tokens) for tokens in sources[start : start + batch]]
            encoded = self.tokenizer(texts, return_tensors="pt", padding=True)
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=encoded["input_ids"],
                    attention_mask=encoded["attention_mask"],
                    num_beams=int(self.beam_size),
                    length_penalty=float(self.length_penalty),
                    do_sample=False,
                    max_new_tokens=self.max_new_tokens,
                )
            outputs += [
                output_tokens(text)
                for text in self.tokenizer.batch_decode(generated, skip_special_tokens=True)
            ]
        return outputs


def load_hf_translator(path: str | Path, **decoding: Any) -> HFTranslator:
    """Model and tokenizer from a local ``save_pretrained`` directory (no network access)."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a saved transformers model (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(str(path), local_files_only=True)
    model.requires_grad_(False)
    return HFTranslator(model, tokenizer, **decoding)
