-- wrk script of bench/proxy.py: POSTs one chat completion per request.
-- Configured by the environment: BENCH_TOKEN (the bearer token), BENCH_MODEL,
-- BENCH_STREAM ("1": SSE with stream_options.include_usage).
-- done() prints one line "BENCH {json}" with exact figures for the harness.

local token = os.getenv("BENCH_TOKEN") or ""
local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
local stream = os.getenv("BENCH_STREAM") == "1"

local body = '{"model":"' .. model .. '","messages":['
  .. '{"role":"system","content":"You are a terse assistant."},'
  .. '{"role":"user","content":"Say hello to the benchmark in a few words."}'
  .. '],"max_tokens":256'
if stream then
  body = body .. ',"stream":true,"stream_options":{"include_usage":true}'
end
body = body .. "}"

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,'
      .. '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,'
      .. '"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read,
    e.write, e.status, e.timeout, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean))
end
