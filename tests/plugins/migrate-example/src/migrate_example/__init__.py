"""An example plugin of vmware-cloud-migrate, found through entry points alone.

- the `dirtarget` driver (target role): a directory that holds one folder per archived VM
  (migrate_example.driver, .settings, .target);
- the `archive` method: copies a VM's disk files from the source vCenter into such a folder with a JSON
  manifest of its hardware and NICs, never touching the source (migrate_example.method, .facts, .outputs),
  through a small port of its own (migrate_example.port); its default playbook ships as package data.
"""

__all__: list[str] = []
