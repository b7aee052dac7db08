"""The daemon's HTTP API: routes (app), the event stream (stream), serving (server)."""
