"""Inference entry points: build a model from a config and run it on images."""
