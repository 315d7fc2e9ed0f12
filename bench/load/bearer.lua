-- wrk: a GET with the benchmark customer's Bearer token (GET /api/me, /api/user/automations).
-- BENCH_DELAY_MS, when set, makes each connection wait that long between requests (a paced
-- run: connections x 1000 / delay requests per second at most).
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_ACCESS")
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause then
  function delay()
    return pause
  end
end
