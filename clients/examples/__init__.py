"""Runnable examples of the client library (run them against ``tradingapp serve``)."""
