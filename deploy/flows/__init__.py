"""The seed flows as commands: ``invoke`` (cross-account endpoint call) and
``share-model-group``."""
