// A tiny blocking HTTP/1.1 client for tests: one request per connection, loopback only.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace eofaas::tests {

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

/// Sends `method path` to `address` ("host:port") with `body` and reads the whole response
/// (Content-Length or connection close). UNAVAILABLE when the connection fails.
absl::StatusOr<HttpResponse> HttpRequest(const std::string& address, const std::string& method,
                                         const std::string& path, const std::string& body = "",
                                         int timeout_ms = 10000);

}  // namespace eofaas::tests
