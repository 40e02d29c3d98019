"""The built-in playbooks (cold, live, noop, replatform, warm, warm_replatform), read via importlib.resources."""
