"""Errors of the registry, importable without MLflow (the CLI catches them)."""


class RegistryError(Exception):
    """A registry request that cannot be carried out; `code` is the CLI exit code."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code
