"""Client library for TradingApp: an asyncio client, a blocking wrapper and a load generator."""
