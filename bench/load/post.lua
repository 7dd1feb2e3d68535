-- wrk script: POST the prepared multipart body in $BODY_FILE with $CONTENT_TYPE.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
wrk.method = "POST"
wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE")

local codes = {}
response = function(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
end
done = function(summary, latency, requests)
  for code, n in pairs(codes) do
    io.write(string.format("status %d: %d\n", code, n))
  end
end
