"""`com.huddle.*` XRPC methods (DESIGN.md §3): inputs validated against the lexicons."""
