"""API keys with scopes, per-key rate limits and the middleware that enforces both."""
