"""Explaining a finished training run: which run, which subjects, batches of maps, shards, tables."""
