"""The built-in playbooks (cold, live, replatform, noop): package data read through importlib.resources."""
