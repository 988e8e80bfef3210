"""The benchmark harness of DESIGN.md's performance targets: `make bench` (or `python -m bench --help`)."""
