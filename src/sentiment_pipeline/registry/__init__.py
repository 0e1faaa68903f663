"""Registration of the champion in the MLflow Model Registry."""
