"""sentiment-pipeline: train, tune, evaluate and register sentiment classifiers for short text."""

__version__ = "0.1.0"
