-- POST /api/v1/emails, one recipient each, from the verified domain in BENCH_DOMAIN. The
-- token comes from BENCH_TOKEN.
dofile("bench/lua/report.lua")
local counter = 0
function request()
  counter = counter + 1
  local body = string.format(
    '{"from":"bench@%s","to":["r%d@example.com"],"subject":"Bench %d","text":"Hello %d"}',
    os.getenv("BENCH_DOMAIN"), counter, counter, counter)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
  }, body)
end
