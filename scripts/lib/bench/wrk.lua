-- wrk script for scripts/bench: prints one machine-readable result line at the end,
-- adds headers read from files, and can rotate through a file of bearer tokens.
--
--   wrk -tN ... -s wrk.lua URL [-- ARGS]   where ARGS are any of
--     header FILE      add the header line in FILE ("Name: value"); keeps credentials
--                      off the command line, where `ps` would show them
--     tokens FILE N    "Authorization: Bearer <token>", a different token on every
--                      request (one per line in FILE): thread k of N uses lines k, k+N,
--                      k+2N, ... and counts how often it ran out and wrapped. N is the
--                      -t value again, because a thread's init() runs before the next
--                      thread's setup().
--     cookies FILE N   the same with "Cookie: <line>": one session cookie header value per
--                      line (benches/seal_sessions.rs writes them)
--
-- The result line (parsed by report.py):
--   BENCH_RESULT {"requests":N,"duration_us":N,"p50_us":N,...,"errors":{...},"wraps":N}
-- Latency percentiles come from wrk's own histogram (microseconds), p99.9 included,
-- which `wrk --latency` does not print.
-- No response() function is defined on purpose: defining one makes wrk hand every
-- response to Lua, which costs client CPU and would cap the fastest servers.

-- setup()/done() run in their own Lua state; `threads` lives there.
local threads = {}

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

local requests_pre = nil
local next_index = 1
wraps = 0

local function read_header(path)
  local file = assert(io.open(path, "r"), "cannot open header file " .. tostring(path))
  local line = file:read("*l")
  file:close()
  local name, value = string.match(line or "", "^([^:]+):%s*(.-)%s*$")
  assert(name, "header file " .. path .. " does not hold a 'Name: value' line")
  wrk.headers[name] = value
end

local function load_credentials(path, n, header, prefix)
  local file = assert(io.open(path, "r"), "cannot open token file " .. tostring(path))
  local k = thread_index
  requests_pre = {}
  local line_no = 0
  for line in file:lines() do
    if line ~= "" then
      if line_no % n == k then
        local headers = {}
        for name, value in pairs(wrk.headers) do headers[name] = value end
        headers[header] = prefix .. line
        requests_pre[#requests_pre + 1] = wrk.format(nil, nil, headers)
      end
      line_no = line_no + 1
    end
  end
  file:close()
  assert(#requests_pre > 0, "file " .. path .. " has no lines for thread " .. k)
  request = function()
    local r = requests_pre[next_index]
    next_index = next_index + 1
    if next_index > #requests_pre then
      next_index = 1
      wraps = wraps + 1
    end
    return r
  end
end

function init(args)
  local i = 1
  local creds
  while args[i] do
    if args[i] == "header" then
      read_header(args[i + 1])
      i = i + 2
    elseif args[i] == "tokens" or args[i] == "cookies" then
      creds = {
        file = args[i + 1],
        n = assert(tonumber(args[i + 2]), args[i] .. " FILE N: N (wrk threads) missing"),
        header = args[i] == "tokens" and "Authorization" or "Cookie",
        prefix = args[i] == "tokens" and "Bearer " or "",
      }
      i = i + 3
    else
      error("unknown wrk.lua argument " .. tostring(args[i]))
    end
  end
  -- Credentials last, so that their pre-built requests include every header.
  if creds then load_credentials(creds.file, creds.n, creds.header, creds.prefix) end
end

function done(summary, latency, requests)
  local total_wraps = 0
  for _, t in ipairs(threads) do
    total_wraps = total_wraps + (t:get("wraps") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"mean_us":%.1f,"p50_us":%d,"p75_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"wraps":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency.mean, latency:percentile(50), latency:percentile(75), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, total_wraps))
end
