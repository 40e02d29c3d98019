"""Bare-metal capacity: host provisioners (EC2 dedicated hosts, Amazon EVS hosts) behind one interface."""

from adapters.capacity.base import TAG_KEY, TAG_PLAN, TAG_WAVE, HostProvisioner, ProvisionedHost

__all__ = ["TAG_KEY", "TAG_PLAN", "TAG_WAVE", "HostProvisioner", "ProvisionedHost"]
