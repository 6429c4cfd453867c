"""`make bench`: every benchmark, one table each (gate overhead, first visible text, concurrency and the rest)."""

from bench import (
    caching,
    concurrency,
    crash_recovery,
    first_text,
    gate_overhead,
    ignored_messages,
    metrics_overhead,
    price_table,
    reconcile,
    scale_out,
    secret_scan,
    sqlite_driver,
)

gate_overhead.main()
first_text.main()
concurrency.main()
sqlite_driver.main()
scale_out.main()
caching.main()
metrics_overhead.main()
secret_scan.main()
price_table.main()
reconcile.main()
ignored_messages.main()
crash_recovery.main()
