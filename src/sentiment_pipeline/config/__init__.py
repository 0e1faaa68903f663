"""Configuration: one Pydantic model per params.yaml section, and the ConfigurationManager.

The package holds no code here: a stage imports only the modules of the sections it reads,
so DVC reruns it only when those change.
"""
