"""Speech in a noisy room (word error rate): an enhancement network and a decoder, retrofitted.

espeak-ng speaks household-robot commands (:mod:`.sentences`), a motor hums in the room
(:mod:`.noise`), a small enhancement network trained here for a signal-level proxy cleans the audio
(:mod:`.enhance`, :mod:`.train`), and pocketsphinx (its bundled acoustic model, with a language model
built from the training commands: :mod:`.language_model`, :mod:`.recognize`) transcribes it; jiwer
scores the word error rate (:mod:`.pipeline`). The ℵ-parameters are the network's output-layer
biases and the decoder's language weight and insertion penalty (:mod:`.task`); :mod:`.experiment`
states three experiments: both, and each alone. See docs/speech.md.
"""
