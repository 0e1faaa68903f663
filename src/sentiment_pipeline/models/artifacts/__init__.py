"""Model artifacts: folders with a model.json manifest; one module per kind, one loader."""
