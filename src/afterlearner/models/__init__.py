"""Small models trained in the repository, each with its training script committed beside its weights."""
