"""Errors of the registry, importable without MLflow (the CLI catches them)."""

from liftgate.core.errors import LiftgateError


class RegistryError(LiftgateError):
    """A registry request that cannot be carried out: refused (exit 1, the default) or about
    a version or alias that does not exist (raised with ``exit_code=BAD_INPUT``)."""
