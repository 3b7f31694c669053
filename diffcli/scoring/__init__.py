"""Scoring what diffusion models generate, for `diffcli eval`.

- classifier.py: the per-dataset scoring CNN (trained once, cached in the registry as `<dataset>-classifier`),
  `predict` (probabilities) and `embed` (features).
- fid.py: FID in the classifier's feature space, cached reference statistics, the real-data floor.
- scores.py: per-class accuracy / confidence, best and worst class, illusion (anagram, hybrid) success rates.
- clip_score.py: optional CLIP image-text scores through open_clip (the `clip` extra).

Import the submodules directly; this package imports nothing heavy itself.
"""
