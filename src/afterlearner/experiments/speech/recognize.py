"""Speech recognition with pocketsphinx: its bundled US English acoustic model, and a language model
and dictionary for the application's sentences (:mod:`.language_model`), built from the training
sentences when the recogniser is created.

Cepstral mean normalisation (CMN) is an estimate pocketsphinx carries from one utterance to the
next; left alone, a sentence's transcript would depend on which sentences came before it. The
recogniser puts the initial CMN back before every utterance, so each transcript depends only on
its audio and the decoding settings.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from afterlearner.experiments.speech.language_model import arpa, dictionary


@dataclass
class Decoding:
    """pocketsphinx decoding hyperparameters: the recogniser ℵ-parameters (pocketsphinx's defaults).

    ``lw`` language model weight, ``wip`` word insertion penalty, ``beam`` the HMM pruning beam,
    ``wbeam`` the word-exit beam, ``pbeam`` the phone-transition beam (beams are probabilities:
    smaller keeps more hypotheses).
    """

    lw: float = 6.5
    wip: float = 0.65
    beam: float = 1e-48
    wbeam: float = 7e-29
    pbeam: float = 1e-48

    def key(self) -> tuple[float, ...]:
        return tuple(float(value) for value in asdict(self).values())


def cmudict_path() -> Path:
    """The CMU pronunciation dictionary shipped with pocketsphinx."""
    from pocketsphinx import get_model_path  # imported here: the package is an optional extra

    return Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"


class Recognizer:
    """Transcribes 16 kHz int16 audio; rebuilds the pocketsphinx decoder when the settings change.

    ``sentences`` (whitespace-separated lower-case words) are what the language model is built
    from; the dictionary holds their words. The two files live in a temporary folder owned by the
    recogniser.
    """

    def __init__(self, sentences: Sequence[str]) -> None:
        words = sorted({word for sentence in sentences for word in sentence.split()})
        self._folder = tempfile.TemporaryDirectory(prefix="afterlearner-sphinx-")
        self.lm_path = Path(self._folder.name) / "corpus.arpa"
        self.dict_path = Path(self._folder.name) / "corpus.dict"
        self.lm_path.write_text(arpa(sentences), encoding="utf-8")
        self.dict_path.write_text(dictionary(words, cmudict_path()), encoding="utf-8")
        self.words = words
        self._decoder = None
        self._key: tuple[float, ...] | None = None
        self._initial_cmn = ""

    def _decoder_for(self, decoding: Decoding):  # -> pocketsphinx.Decoder
        key = decoding.key()
        if self._decoder is None or key != self._key:
            from pocketsphinx import Decoder  # imported here: the package is an optional extra

            self._decoder = Decoder(
                loglevel="ERROR",
                lm=str(self.lm_path),
                dict=str(self.dict_path),
                **dict(zip(asdict(decoding), key, strict=True)),
            )
            self._key = key
            self._initial_cmn = self._decoder.get_cmn()
        return self._decoder

    def transcribe(self, audio: np.ndarray, decoding: Decoding) -> str:
        """The recognised words (lower case), CMN reset first so the result is order-independent."""
        if audio.dtype != np.int16 or audio.ndim != 1:
            raise ValueError(f"expected 1-D int16 audio at 16 kHz, got {audio.dtype}, shape {audio.shape}")
        decoder = self._decoder_for(decoding)
        decoder.set_cmn(self._initial_cmn)
        decoder.start_utt()
        decoder.process_raw(audio.tobytes(), no_search=False, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr.strip() if hypothesis is not None else ""
