"""The small JavaScript → Python translation model and its beam-search decoder.

``Seq2Seq`` is an encoder-decoder transformer in the original post-norm arrangement, so every
decoder layer has three LayerNorms (``norm1``, ``norm2``, ``norm3``) and the decoder a final one
(``decoder.norm``): the gains retrofitting can rescale. Decoding is incremental (cached keys and
values), so a beam search over a hundred programs takes seconds on a CPU. ``Translator`` wraps a
model and its vocabularies with the decoding hyperparameters retrofitting searches: ``beam_size``
and ``length_penalty`` (a finished hypothesis scores log-probability / length^penalty, as in
Hugging Face's ``generate``).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from afterlearner.experiments.code_translation.tokens import BOS, EOS, PAD, Vocabulary

#: The committed weights, produced by ``python -m afterlearner.experiments.code_translation.train``.
WEIGHTS = Path(__file__).with_name("translator.pt")

Cache = dict[str, torch.Tensor]


class Attention(nn.Module):
    """Multi-head attention; ``cache`` keeps keys and values of earlier decoding steps."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)

    def keys_values(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        key, value = self.key_value(source).chunk(2, dim=-1)
        return self._split(key), self._split(value)

    def forward(
        self,
        x: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        mask: torch.Tensor | None = None,
        causal: bool = False,
    ) -> torch.Tensor:
        attended = F.scaled_dot_product_attention(
            self._split(self.query(x)), keys, values, attn_mask=mask, is_causal=causal
        )
        return self.out(attended.transpose(1, 2).reshape(x.shape))


class EncoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.attention = Attention(width, heads)
        self.feedforward = nn.Sequential(
            nn.Linear(width, feedforward), nn.ReLU(), nn.Linear(feedforward, width)
        )
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.dropout(self.attention(x, *self.attention.keys_values(x), mask=mask)))
        return self.norm2(x + self.dropout(self.feedforward(x)))


class DecoderLayer(nn.Module):
    def __init__(self, width: int, heads: int, feedforward: int, dropout: float) -> None:
        super().__init__()
        self.self_attention = Attention(width, heads)
        self.cross_attention = Attention(width, heads)
        self.feedforward = nn.Sequential(
            nn.Linear(width, feedforward), nn.ReLU(), nn.Linear(feedforward, width)
        )
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        memory: tuple[torch.Tensor, torch.Tensor],
        memory_mask: torch.Tensor,
        cache: Cache | None = None,
    ) -> torch.Tensor:
        keys, values = self.self_attention.keys_values(x)
        if cache is not None:  # incremental: x is the newest position only
            if "keys" in cache:
                keys, values = torch.cat([cache["keys"], keys], 2), torch.cat([cache["values"], values], 2)
            cache["keys"], cache["values"] = keys, values
        attended = self.self_attention(x, keys, values, causal=cache is None)
        x = self.norm1(x + self.dropout(attended))
        x = self.norm2(x + self.dropout(self.cross_attention(x, *memory, mask=memory_mask)))
        return self.norm3(x + self.dropout(self.feedforward(x)))


class Decoder(nn.Module):
    def __init__(self, width: int, heads: int, feedforward: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(DecoderLayer(width, heads, feedforward, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)


class Seq2Seq(nn.Module):
    """Encoder-decoder transformer over token ids (0 is padding)."""

    def __init__(
        self,
        source_size: int,
        target_size: int,
        width: int = 64,
        heads: int = 4,
        layers: int = 2,
        feedforward: int = 192,
        max_len: int = 96,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.config = dict(
            source_size=source_size,
            target_size=target_size,
            width=width,
            heads=heads,
            layers=layers,
            feedforward=feedforward,
            max_len=max_len,
            dropout=dropout,
        )
        self.width = width
        self.source_embedding = nn.Embedding(source_size, width, padding_idx=0)
        self.target_embedding = nn.Embedding(target_size, width, padding_idx=0)
        self.position = nn.Embedding(max_len, width)
        self.encoder = nn.ModuleList(EncoderLayer(width, heads, feedforward, dropout) for _ in range(layers))
        self.decoder = Decoder(width, heads, feedforward, layers, dropout)
        self.output = nn.Linear(width, target_size)

    def _embed(self, embedding: nn.Embedding, ids: torch.Tensor, offset: int = 0) -> torch.Tensor:
        positions = torch.arange(offset, offset + ids.shape[1], device=ids.device).clamp(
            max=self.position.num_embeddings - 1
        )
        return embedding(ids) * math.sqrt(self.width) + self.position(positions)

    def encode(self, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (N, S, W) and the attention mask (N, 1, 1, S) that hides padding."""
        mask = (source != 0)[:, None, None, :]
        x = self._embed(self.source_embedding, source)
        for layer in self.encoder:
            x = layer(x, mask)
        return x, mask

    def memories(self, memory: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Cross-attention keys and values of every decoder layer (computed once per source)."""
        return [layer.cross_attention.keys_values(memory) for layer in self.decoder.layers]

    def decode(
        self,
        target: torch.Tensor,
        memories: list[tuple[torch.Tensor, torch.Tensor]],
        mask: torch.Tensor,
        caches: list[Cache] | None = None,
        offset: int = 0,
    ) -> torch.Tensor:
        """Next-token logits for every target position (or for the newest one, with ``caches``)."""
        x = self._embed(self.target_embedding, target, offset)
        for index, layer in enumerate(self.decoder.layers):
            x = layer(x, memories[index], mask, None if caches is None else caches[index])
        return self.output(self.decoder.norm(x))

    def forward(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        memory, mask = self.encode(source)
        return self.decode(target, self.memories(memory), mask)


def pad(sequences: list[list[int]], length: int | None = None) -> torch.Tensor:
    """A (N, L) tensor of ids, right-padded with 0."""
    length = length or max(len(s) for s in sequences)
    out = torch.zeros(len(sequences), length, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, : min(length, len(sequence))] = torch.tensor(sequence[:length], dtype=torch.long)
    return out


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore the setting.

    Step-by-step decoding of a small model issues thousands of tiny operations, for which thread
    synchronisation costs more than it saves (tens of times more on a busy machine).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Translator:
    """Model + vocabularies + decoding hyperparameters: tokens in, tokens out."""

    def __init__(
        self,
        model: Seq2Seq,
        source: Vocabulary,
        target: Vocabulary,
        beam_size: int = 1,
        length_penalty: float = 1.0,
        max_len: int = 80,
    ) -> None:
        self.model = model.eval()
        self.source, self.target = source, target
        self.beam_size = beam_size
        self.length_penalty = length_penalty
        self.max_len = max_len

    def translate(self, sources: list[list[str]], batch: int = 128) -> list[list[str]]:
        """Target tokens for each source token list (without BOS/EOS)."""
        outputs: list[list[str]] = []
        for start in range(0, len(sources), batch):
            chunk = sources[start : start + batch]
            ids = pad([self.source.encode(tokens) + [self.source.index[EOS]] for tokens in chunk])
            with torch.no_grad(), single_thread():
                results = beam_search(
                    self.model,
                    ids,
                    self.target,
                    int(self.beam_size),
                    float(self.length_penalty),
                    self.max_len,
                )
            outputs += [self.target.decode(result) for result in results]
        return outputs


def beam_search(
    model: Seq2Seq,
    source: torch.Tensor,
    vocabulary: Vocabulary,
    beam_size: int,
    length_penalty: float,
    max_len: int,
) -> list[list[int]]:
    """Batched beam search with cached decoding; finished hypotheses score sum log p / length^penalty."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    bos, eos, pad_id = vocabulary.index[BOS], vocabulary.index[EOS], vocabulary.index[PAD]
    count, k = source.shape[0], beam_size
    memory, mask = model.encode(source)
    memories = [
        (key.repeat_interleave(k, 0), value.repeat_interleave(k, 0)) for key, value in model.memories(memory)
    ]
    mask = mask.repeat_interleave(k, 0)
    caches: list[Cache] = [{} for _ in model.decoder.layers]
    tokens = torch.full((count * k, 1), bos, dtype=torch.long)
    history: list[list[int]] = [[] for _ in range(count * k)]
    scores = torch.zeros(count, k)
    scores[:, 1:] = -math.inf  # all beams start identical: keep one
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(count)]
    done = [False] * count
    for step in range(1, max_len + 1):
        logits = model.decode(tokens, memories, mask, caches, offset=step - 1)[:, -1]
        logits[:, pad_id] = -math.inf
        logits[:, bos] = -math.inf
        size = logits.shape[1]
        candidates = (scores.view(-1, 1) + torch.log_softmax(logits, dim=-1)).view(count, -1)
        top_scores, top_index = candidates.topk(min(2 * k, candidates.shape[1]), dim=1)
        origins, next_tokens, next_history = [], [], []
        new_scores = torch.full((count, k), -math.inf)
        for example in range(count):
            kept = 0
            for score, index in zip(top_scores[example].tolist(), top_index[example].tolist(), strict=True):
                if score == -math.inf or kept == k:
                    break
                beam, token = divmod(index, size)
                row = example * k + beam
                if token == eos or step == max_len:
                    if not done[example]:
                        finished[example].append((score / step**length_penalty, history[row]))
                    continue
                origins.append(row)
                next_tokens.append(token)
                next_history.append(history[row] + [token])
                new_scores[example, kept] = score
                kept += 1
            for _ in range(kept, k):  # dead beams: -inf score, never extended
                origins.append(example * k)
                next_tokens.append(pad_id)
                next_history.append([])
            if len(finished[example]) >= k:
                done[example] = True
        if all(done):
            break
        order = torch.tensor(origins)
        for cache in caches:
            cache["keys"], cache["values"] = cache["keys"][order], cache["values"][order]
        tokens = torch.tensor(next_tokens).view(-1, 1)
        history, scores = next_history, new_scores
    return [max(hypotheses, key=lambda h: h[0])[1] if hypotheses else [] for hypotheses in finished]


def load_translator(path: str | Path | None = None, **decoding: float) -> Translator:
    """The committed (or given) model as a :class:`Translator` (eval mode, gradients off)."""
    path = Path(path) if path is not None else WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `python -m afterlearner.experiments.code_translation.train`"
        )
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = Seq2Seq(**checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.eval().requires_grad_(False)
    return Translator(model, Vocabulary(checkpoint["source"]), Vocabulary(checkpoint["target"]), **decoding)
