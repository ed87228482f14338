"""Voice activity detection (frame F1): the pretrained Silero VAD on a condition it was not built for.

A real pretrained network whose weights ship inside a package: Silero VAD v6, TorchScript, from the
``silero-vad`` wheel (MIT; :mod:`.model`). It hears espeak-ng speech made reverberant and mixed
with music-like tones and pink noise (:mod:`.audio`, frame labels known from how each clip was
built). The ℵ-parameters are per-frequency-bin input gains, the last layer's per-feature factors and
bias, and the decision threshold and hysteresis (:mod:`.task`); :mod:`.experiment` states the
experiments. See docs/vad.md.
"""
