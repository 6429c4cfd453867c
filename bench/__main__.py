from bench import gate_overhead

gate_overhead.main()
