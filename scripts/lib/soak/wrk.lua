-- wrk script for scripts/soak: scripts/lib/bench/wrk.lua (its `header FILE` arguments)
-- plus a count of non-2xx responses, and one result line per wrk run instead of
-- BENCH_RESULT:
--
--   SOAK_RESULT {"requests":N,"duration_us":N,"p50_us":N,"p99_us":N,"max_us":N,
--                "non2xx":N,"connect":N,"read":N,"write":N,"timeout":N}   (one line)
--
-- Unlike the bench script this one defines response(), so wrk hands every response to
-- Lua: that costs client CPU, but every status is seen, 1xx and 3xx included (wrk's own
-- "status" error counts only >= 400).

local dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
dofile(dir .. "/../bench/wrk.lua")

-- setup()/done() run in their own Lua state; `threads` lives there.
local threads = {}
local bench_setup = setup
function setup(thread)
  bench_setup(thread)
  table.insert(threads, thread)
end

non2xx = 0

function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non2xx") or 0) end
  local e = summary.errors
  io.write(string.format(
    'SOAK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"non2xx":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, bad, e.connect, e.read, e.write, e.timeout))
end
