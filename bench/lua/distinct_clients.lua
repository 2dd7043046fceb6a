-- Every request from a different client address (X-Forwarded-For behind a trusted proxy),
-- unauthenticated to an API route: each one creates a rate-limit counter.
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 4000000)
  table.insert(threads, thread)
end
function init(args)
  counter = offset
end
function request()
  counter = counter + 1
  local a = counter % 256
  local b = math.floor(counter / 256) % 256
  local c = math.floor(counter / 65536) % 256
  return wrk.format("GET", "/api/v1/me", { ["X-Forwarded-For"] = "10." .. c .. "." .. b .. "." .. a })
end
