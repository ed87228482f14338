"""Speech recognition with pocketsphinx and its bundled US English acoustic model, LM and dictionary.

Cepstral mean normalisation (CMN) is an estimate pocketsphinx carries from one utterance to the
next; left alone, a sentence's transcript would depend on which sentences came before it. The
recogniser puts the initial CMN back before every utterance, so each transcript depends only on
its audio and the decoding settings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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


class Recognizer:
    """Transcribes 16 kHz int16 audio; rebuilds the pocketsphinx decoder when the settings change."""

    def __init__(self) -> None:
        self._decoder = None
        self._key: tuple[float, ...] | None = None
        self._initial_cmn = ""

    def _decoder_for(self, decoding: Decoding):  # -> pocketsphinx.Decoder
        key = decoding.key()
        if self._decoder is None or key != self._key:
            from pocketsphinx import Decoder  # imported here: the package is an optional extra

            self._decoder = Decoder(loglevel="ERROR", **dict(zip(asdict(decoding), key, strict=True)))
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
