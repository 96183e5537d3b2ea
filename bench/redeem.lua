-- wrk script for bench/token_endpoint.py: POST /token, each authorization code in CODES_FILE
-- exactly once. Thread i of THREADS takes every THREADS-th code from line i; a thread that has
-- sent all its codes stops (and the caller reports that the row ran out of codes).
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
end

function init(args)
  codes = {}
  local index, threads = 0, tonumber(os.getenv("THREADS"))
  for line in io.lines(os.getenv("CODES_FILE")) do
    if index % threads == thread_id then table.insert(codes, line) end
    index = index + 1
  end
  position = 0
  body_prefix = "grant_type=authorization_code&redirect_uri=" .. os.getenv("REDIRECT_URI") .. "&code="
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Authorization"] = os.getenv("AUTHORIZATION")
end

function request()
  position = position + 1
  if position > #codes then
    wrk.thread:stop()
    position = #codes
  end
  return wrk.format(nil, "/token", nil, body_prefix .. codes[position])
end
