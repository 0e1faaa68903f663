"""The transformer stage's parts: device choice, trial parameters, encoding, the Trainer."""
