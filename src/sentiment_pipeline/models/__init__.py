"""Model stages and the model-artifact format."""
