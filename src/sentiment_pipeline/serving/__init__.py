"""The HTTP inference service: TEI's /predict, MLflow's /invocations, health, info and metrics."""
