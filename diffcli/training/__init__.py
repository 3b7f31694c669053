"""Training: recipes, the loop, EMA, resumable checkpoints, artifacts and torchrun scale-out."""
