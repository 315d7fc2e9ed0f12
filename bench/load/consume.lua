-- wrk: POST /api/automation-usage/consume, 1 token per call, a unique idempotency key per
-- request (run id, thread number, counter).
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end
function init(args)
  counter = 0
  run = os.getenv("BENCH_RUN") or "0"
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Zimmer-Service-Token"] = os.getenv("SERVICE_TOKEN")
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"user_automation_id":%s,"units":1,"idempotency_key":"load-%s-%d-%d"}',
    os.getenv("BENCH_UA"), run, thread_no, counter)
  return wrk.format(nil, nil, nil, body)
end
