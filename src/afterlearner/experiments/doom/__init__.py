"""Doom (kills per life): a small policy cloned from a scripted teacher, retrofitted in its last layer.

ViZDoom's ``defend_the_center`` (Freedoom graphics, headless): a tiny convolutional policy trained
in this repository (``train.py``, weights ``policy.pt``) sees a low-resolution horizon band plus
ammo and health and picks turn left / turn right / attack. The ℵ-parameters are the last layer's
three biases and three per-action scales and the action-sampling temperature (7 scalars); the
ℵ-loss is minus the mean kills per life over fixed episode seeds, checked on disjoint seeds
(:mod:`.task`; the experiment: :mod:`.experiment`). See docs/doom.md.
"""
