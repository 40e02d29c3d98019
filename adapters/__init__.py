"""Everything that talks to a provider SDK (pyvmomi, vAPI REST, boto3) lives under this package."""

__all__: list[str] = []
