-- wrk script of the HTTP benchmark (bench/http.py runs it).
-- WT_BENCH_TARGETS: a file of "student_id token" lines; each request picks one
-- at random, so the load spreads over many students, each with its parent's
-- token. WT_BENCH_PATH: "ceiling" asks the no-database endpoint instead,
-- "healthz" the health check (one `select 1` through the same pool and role).
-- WT_BENCH_QUERY: appended to the weekly-trend path (e.g. ?end=2026-06-12).
local targets = {}
local ceiling = os.getenv("WT_BENCH_PATH") == "ceiling"
local healthz = os.getenv("WT_BENCH_PATH") == "healthz"
local query = os.getenv("WT_BENCH_QUERY") or ""

for line in io.lines(os.getenv("WT_BENCH_TARGETS")) do
  local id, token = line:match("^(%d+) (%S+)$")
  if id then
    targets[#targets + 1] = { "/api/v1/students/" .. id .. "/weekly-trend" .. query, "Bearer " .. token }
  end
end

local thread_number = 0
function setup(thread)
  thread_number = thread_number + 1
  thread:set("seed", thread_number)
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  local t = targets[math.random(#targets)]
  if ceiling then
    return wrk.format("GET", "/bench/ceiling", { ["Authorization"] = t[2] })
  end
  if healthz then
    return wrk.format("GET", "/healthz", { ["Authorization"] = t[2] })
  end
  return wrk.format("GET", t[1], { ["Authorization"] = t[2] })
end

-- One machine-readable line for bench/http.py.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
