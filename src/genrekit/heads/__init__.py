"""Heads: the small models that turn pretrained backbones' outputs into genre answers.

* ``logistic``: standardised multinomial logistic regression, fitted with scikit-learn (training
  only) and run in plain numpy (prediction never needs scikit-learn or torch);
* ``openset``: the "other" answer: thresholds chosen inside cross-validation folds, and the
  recalibration that puts every in-set score's threshold at 0.5;
* ``validation``: grouped cross-validation over sources, metrics and bootstrap intervals.
"""
