"""The noop driver: a fake source and target in this process, for the `noop` method, tests and benchmarks."""
