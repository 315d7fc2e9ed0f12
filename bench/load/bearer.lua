-- wrk: a GET with the benchmark customer's Bearer token (GET /api/me).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_ACCESS")
