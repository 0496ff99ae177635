"""The pure matching core: symbol rules, order books, matching, fees. No I/O, clock or asyncio."""
