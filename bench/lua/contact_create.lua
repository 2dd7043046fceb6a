-- POST /api/v1/contacts with a fresh email and phone each time (encrypted fields and blind
-- indexes included). The token comes from BENCH_TOKEN.
dofile("bench/lua/report.lua")
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local counter = 0
function request()
  counter = counter + 1
  local body = string.format(
    '{"first_name":"Bench","last_name":"Contact","email":"c%d-%d@bench.example","phone":"+1555%07d"}',
    id or 0, counter, counter)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  }, body)
end
