"""The lab's vCenter simulator source (main.go), shipped as package data and built by migrate.lab.vcsim_build."""
