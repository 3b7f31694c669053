"""Scoring what diffusion models generate, for `diffcli eval`.

- classifier.py: which scoring CNN grades a dataset (the registry's `<dataset>-classifier`, the shipped one,
  or one trained once and cached in the registry), and that cache.
- classifier_training.py: the one recipe that trains a scoring classifier.
- splits.py: the train and test splits a classifier and FID read (a folder's held-out test share).
- inference.py: `predict` (probabilities) and `embed` (features) with a loaded classifier.
- fid.py: FID in the classifier's feature space, cached reference statistics, the real-data floor.
- scores.py: per-class accuracy / confidence, best and worst class, illusion (anagram, hybrid) success rates.
- clip_score.py: optional CLIP image-text scores through open_clip (the `clip` extra).

Import the submodules directly; this package imports nothing heavy itself.
"""
