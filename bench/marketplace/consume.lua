-- wrk script: POST /api/automation-usage/consume, 1 unit per call, an idempotency key unique
-- per request (BENCH_RUN, the thread number and a counter). USER_AUTOMATIONS (comma list of
-- ids) spreads calls over those rows; one id puts every call on the same row (the worst case:
-- they serialise on its row lock). Prints how many answers were not `accepted: true`.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

function init(args)
  ids = {}
  for id in string.gmatch(os.getenv("USER_AUTOMATIONS") or "", "[^,]+") do
    ids[#ids + 1] = id
  end
  run = os.getenv("BENCH_RUN") or "0"
  counter = 0
  refused = 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Zimmer-Service-Token"] = os.getenv("SERVICE_TOKEN")
end

function request()
  counter = counter + 1
  local id = ids[(counter % #ids) + 1]
  local body = string.format(
    '{"user_automation_id":%s,"units":1,"usage_type":"session","idempotency_key":"bench-%s-%d-%d"}',
    id, run, thread_no, counter)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  if status ~= 200 or not string.find(body, '"accepted":true', 1, true) then
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do
    total = total + t:get("refused")
  end
  io.write(string.format("not accepted (status or accepted=false): %d\n", total))
end
