"""The example models of the demos, all on scikit-learn's bundled 8×8 digits (nothing downloaded).

* :mod:`.task`: the digits demo (``afterlearner demo``): a classifier trained on a class-imbalanced
  split, retrofitted for balanced error;
* :mod:`.generator`: a small image generator (a VAE decoder), weights ``generator.pt`` beside it,
  trained by :mod:`.train_generator`; the ``image_generator`` experiment retrofits it too;
* :mod:`.steering`: the online demo (``afterlearner feedback demo``): steer the generator by clicks;
* :mod:`.curve`: the feedback session against random proposals with a simulated user
  (docs/online-curve.png).
"""
