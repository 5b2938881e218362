"""The monitor's web dashboard (``squidguard-bloom-monitor serve``); needs aiohttp."""
