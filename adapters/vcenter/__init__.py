"""vCenter adapter: pyvmomi over SOAP, vAPI REST for tags, datastore HTTP for files."""

from adapters.vcenter.connection import VCenterSession, connect

__all__ = ["VCenterSession", "connect"]
