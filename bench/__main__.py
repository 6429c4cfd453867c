"""`make bench`: every benchmark, one table each (gate overhead, first visible text, concurrency and the rest)."""

from bench import concurrency, first_text, gate_overhead, ignored_messages, metrics_overhead, secret_scan

gate_overhead.main()
first_text.main()
concurrency.main()
metrics_overhead.main()
secret_scan.main()
ignored_messages.main()
