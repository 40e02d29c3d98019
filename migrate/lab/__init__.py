"""The built-in lab: two vCenter simulators (on-prem and cloud SDDC) and a moto server on loopback."""
