"""The benchmarks: `python -m bench` (`make bench`) runs P1-P7 and M1 of the design and writes
docs/benchmarks.md; `python -m bench.auth_limit_cost` measures what authentication and rate
limiting cost per request, in process."""
