"""The egress-review gateway: quarantined export requests, automatic disclosure checks,
independent N-of-M review in a web page, and time-limited release of approved files."""
