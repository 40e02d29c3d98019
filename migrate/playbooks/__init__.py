"""The built-in playbooks (cold, live, noop, replatform, warm, warm_replatform): package data read through importlib.resources."""
