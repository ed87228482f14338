"""Speech resynthesis (word error rate), synthesis and decoding settings together or apart.

espeak-ng speaks Harvard sentences, pocketsphinx (its bundled US English acoustic model, language
model and dictionary) recognises them, jiwer scores the word error rate against the text. The
ℵ-parameters are espeak-ng's speed, pitch, word gap and voice variant and pocketsphinx's language
weight, word insertion penalty and beams (:mod:`.task`). :mod:`.experiment` states three
experiments: both halves of the settings, and each half alone. See docs/speech.md.
"""
