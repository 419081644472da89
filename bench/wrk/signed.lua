-- Send pre-signed Twilio webhooks, each at most once per run.
--
--   wrk -t T -s bench/wrk/signed.lua http://127.0.0.1:PORT -- FILE OFFSET PATH T LIMIT
--
-- FILE has one request per line: "signature<TAB>urlencoded body" (bench/payloads.py).
-- Thread t of T sends lines OFFSET+t, OFFSET+t+T, ... (below OFFSET+LIMIT) in order. When a
-- thread runs out of lines it wraps around, and every wrapped request is
-- counted as a duplicate (the project would answer it from its dedupe cache).
-- done() prints one line "BENCH_JSON {...}" for bench/load.py.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local file, offset, path = args[1], tonumber(args[2] or "0"), args[3] or "/twilio/messages"
  local nthreads = tonumber(args[4] or "1")
  local stop = offset + tonumber(args[5] or "1000000000")
  requests = {}
  sent = 0
  wraps = 0
  local i = 0
  for line in io.lines(file) do
    if i >= stop then break end
    if i >= offset and (i - offset) % nthreads == tid then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("POST", path, {
        ["Content-Type"] = "application/x-www-form-urlencoded",
        ["X-Twilio-Signature"] = sig,
        ["User-Agent"] = "TwilioProxy/1.1",
      }, body)
    end
    i = i + 1
  end
  if #requests == 0 then
    error("no requests for thread " .. tid .. " in " .. file .. " from offset " .. offset)
  end
  available = #requests
end

function request()
  sent = sent + 1
  local index = sent - wraps * #requests
  if index > #requests then
    wraps = wraps + 1
    index = 1
  end
  return requests[index]
end

function done(summary, latency, _)
  local sent_total, dup_total, per_thread = 0, 0, {}
  for _, t in ipairs(threads) do
    local s, n = t:get("sent"), t:get("available")
    sent_total = sent_total + s
    local dup = s - n
    if dup > 0 then dup_total = dup_total + dup end
    per_thread[#per_thread + 1] = s
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},' ..
    '"sent":%d,"duplicates":%d,"sent_per_thread":[%s]}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    sent_total, dup_total, table.concat(per_thread, ",")))
end
