-- wrk script: a typical browser page request from many client addresses,
-- given to the edge through X-Forwarded-For (the edge trusts 127.0.0.1).
-- Addresses come from 10.x (one /8 per wrk thread) for allowed traffic, or
-- from the blocked benchmark's 198.51.100.0/24 when BLOCKED=1, from the
-- challenged 198.51.101.0/24 when CHALLENGED=1; DISTINCT=1
-- makes every request come from a new address.
local counter = 0
local thread_id = 0
local blocked = os.getenv("BLOCKED") == "1"
local challenged = os.getenv("CHALLENGED") == "1"
local distinct = os.getenv("DISTINCT") == "1"

-- PACE_MS: each connection waits this long after a response before its next
-- request, for a fixed request rate (connections / PACE_MS per ms).
local pace = tonumber(os.getenv("PACE_MS") or "")
if pace then
  function delay() return pace end
end

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

local headers = {
  ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
  ["Accept-Language"] = "en-GB,en;q=0.9",
  ["Accept-Encoding"] = "gzip, deflate, br",
  ["Sec-Ch-Ua"] = '"Chromium";v="131", "Not_A Brand";v="24"',
  ["Sec-Ch-Ua-Mobile"] = "?0",
  ["Sec-Ch-Ua-Platform"] = '"Linux"',
  ["Sec-Fetch-Site"] = "same-origin",
  ["Sec-Fetch-Mode"] = "navigate",
  ["Sec-Fetch-Dest"] = "document",
  ["Upgrade-Insecure-Requests"] = "1",
}

function request()
  counter = counter + 1
  local n
  if distinct then
    -- every request from a new address: thread id in the top bits
    n = thread_id * 8388608 + counter
  else
    n = counter % 5000
  end
  local a = math.floor(n / 65536) % 256
  local b = math.floor(n / 256) % 256
  local c = n % 256
  if blocked then
    headers["X-Forwarded-For"] = "198.51.100." .. c
  elseif challenged then
    headers["X-Forwarded-For"] = "198.51.101." .. c
  else
    headers["X-Forwarded-For"] = (10 + thread_id) .. "." .. a .. "." .. b .. "." .. c
  end
  return wrk.format("GET", "/", headers)
end
