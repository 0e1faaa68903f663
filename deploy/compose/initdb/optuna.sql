-- The Optuna studies' database beside MLflow's (POSTGRES_DB): both keep their schema version in
-- a table named alembic_version, so they cannot share one. Run once, when the volume is new.
CREATE DATABASE optuna;
