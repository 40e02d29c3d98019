"""A read-only connectivity check of one vCenter: log in, read `about`, log out."""

from __future__ import annotations

from typing import Any

from adapters.vcenter.connection import connect
from adapters.vcenter.rest import RestClient
from adapters.vcenter.settings import VCenterEndpoint

__all__ = ["check_vcenter"]


def check_vcenter(endpoint: VCenterEndpoint) -> dict[str, Any]:
    """Log in over SOAP and REST; return what the server says about itself."""
    with connect(endpoint) as vc:
        about = vc.about
        RestClient(vc).close()
        return {"endpoint": endpoint.host, "product": about.fullName, "api_version": about.apiVersion,
                "instance_uuid": about.instanceUuid,
                "summary": f"{endpoint.host}  {about.fullName} (API {about.apiVersion}, instance {about.instanceUuid})"}
