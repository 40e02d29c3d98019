"""Capacity wiring: the site's host provisioner and target cluster, each opened through its driver, as the
ports the engine's capacity step drives (migrate.engine.capacity).

    with closing(open_capacity(site)) as ports:
        ensure_capacity(ports, sizes, plan_tag=run_id, wave_id="1", settings=settings, host=host)

The provisioner is site.yaml `capacity.provisioner` (default `ec2`), opened by its HOST_PROVISIONER driver;
the cluster is offered by the target's driver (`Driver.host_cluster`).
"""

from __future__ import annotations

from migrate.core.capacity_ports import HostCluster, HostProvisioner, ProvisionerSettings
from migrate.core.config import CapacityConfig, DriverSettings, SiteConfig
from migrate.core.drivers import ConnectOptions, Role, get_driver
from migrate.core.errors import InputError, OperationalError
from migrate.engine.capacity import CapacityPorts

__all__ = ["grows_cluster", "open_capacity", "open_cluster", "open_provisioner", "provisioner_settings"]


def grows_cluster(site: SiteConfig) -> bool:
    """True when the site has a target cluster and says where hosts come from: a `capacity` section, or a
    default provisioner the rest of the site completes (e.g. ec2 with an aws replatformer's account)."""
    if site.target is None or not site.target.placement().cluster:
        return False
    if site.capacity is not None:
        return True
    settings = provisioner_settings(site)
    return not isinstance(settings, ProvisionerSettings) or settings.complete()


def provisioner_settings(site: SiteConfig, section: DriverSettings | None = None) -> DriverSettings:
    """`section` (default: site.yaml `capacity.provisioner`) with what it leaves out taken from the site."""
    section = section or (site.capacity or CapacityConfig()).provisioner
    return section.for_site(site) if isinstance(section, ProvisionerSettings) else section


def open_provisioner(site: SiteConfig, section: DriverSettings | None = None) -> HostProvisioner:
    """The host provisioner of `section` (default: the site's), opened by its driver (offline: it logs in lazily)."""
    settings = provisioner_settings(site, section)
    driver = get_driver(settings.driver, Role.HOST_PROVISIONER, field_name="capacity.provisioner.driver")
    provisioner = driver.connect(Role.HOST_PROVISIONER, settings, ConnectOptions())
    if not isinstance(provisioner, HostProvisioner):
        raise OperationalError(f"driver {driver.name}: its host provisioner is a {type(provisioner).__name__}, "
                               "not a HostProvisioner")
    return provisioner


def open_cluster(site: SiteConfig) -> HostCluster:
    """The target's cluster, as its driver offers it; InputError when the site has none to grow."""
    target = site.target
    if target is None or not target.placement().cluster:
        raise InputError.single("site.yaml", "target.cluster", "the cloud vCenter and its cluster are needed")
    opener = get_driver(target.driver, Role.TARGET, field_name="target.driver").host_cluster
    if opener is None:
        raise InputError.single("site.yaml", "target.driver", f"driver {target.driver!r} offers no cluster whose "
                                                              "hosts capacity could manage")
    cluster = opener(target)
    if not isinstance(cluster, HostCluster):
        raise OperationalError(f"driver {target.driver}: its cluster is a {type(cluster).__name__}, not a HostCluster")
    return cluster


def open_capacity(site: SiteConfig, provisioner: DriverSettings | None = None) -> CapacityPorts:
    """Both ports of the site (the provisioner of `provisioner`, default the site's); close them when done."""
    host_provisioner = open_provisioner(site, provisioner)
    try:
        return CapacityPorts(provisioner=host_provisioner, cluster=open_cluster(site))
    except BaseException:
        host_provisioner.close()
        raise
