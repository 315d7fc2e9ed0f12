-- wrk: POST /api/tickets as the panel sends it (multipart: user_id, subject, message, importance).
local b = "zimmerbenchboundary"
local function field(name, value)
  return "--" .. b .. "\r\nContent-Disposition: form-data; name=\"" .. name .. "\"\r\n\r\n" .. value .. "\r\n"
end
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_ACCESS")
wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. b
wrk.body = field("user_id", os.getenv("BENCH_USER_ID")) .. field("subject", "Benchmark ticket")
  .. field("message", "A ticket opened by the load benchmark.") .. field("importance", "medium")
  .. "--" .. b .. "--\r\n"
