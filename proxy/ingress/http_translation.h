// How the HTTP/1.1 ingress speaks: its one route, the request body as an InvokeRequest, and a
// call's status and response as an HTTP answer. Pure functions; the connections are
// http_ingress.h's.
//
//   POST /v1/functions/{name}:invoke   {"cursor": {...}, "args": {...}, "timeout": "1.5s"}
//   200  the result bytes (X-Eofaas-Replica, X-Eofaas-Attempts)
//   200  X-Eofaas-Function-Error: handled|unhandled, {"error":{"type":"...","message":"..."}}
//   4xx/5xx  {"error":{"code":"NOT_FOUND","message":"..."}}
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "eofaas/v1/invoker.pb.h"

namespace eofaas::proxy {

/// What the ingress sends back.
struct HttpAnswer {
  int status = 200;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

/// The function `target` names when it is `/v1/functions/{name}:invoke`, nullopt otherwise. The
/// name is returned as written: InvokeRequest validation judges it.
std::optional<std::string_view> InvokeRoute(std::string_view target);

/// The answer to a request that is not an invoke: 404 for another target, 405 (with `Allow`) for
/// another method than POST, 415 for a body declared other than JSON. nullopt for an invoke.
std::optional<HttpAnswer> RejectRequestLine(std::string_view method, std::string_view target,
                                            std::string_view content_type);

/// The body, a JSON object with the InvokeRequest fields `cursor`, `args` and `timeout` in their
/// proto3 JSON form, as the request to run `function`. INVALID_ARGUMENT naming `body` for
/// anything else (unknown fields and `function` included: the path names it).
absl::StatusOr<eofaas::v1::InvokeRequest> ParseInvokeBody(std::string_view function,
                                                          std::string_view body);

/// The HTTP status standing for a failed call's code: INVALID_ARGUMENT 400, PERMISSION_DENIED
/// 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, CANCELLED 499, UNAVAILABLE 503,
/// DEADLINE_EXCEEDED 504, anything else 500.
int HttpStatusOf(absl::StatusCode code);

/// A failed request or call: its HTTP status and `{"error":{"code","message"}}`.
HttpAnswer ErrorAnswer(const absl::Status& status);

/// A call's answer: ErrorAnswer for a failed call; for an OK one the result bytes, or the
/// function error as replicas report it (the header and `{"error":{"type","message"}}`).
HttpAnswer InvokeAnswer(const absl::Status& status, eofaas::v1::InvokeResponse& response);

}  // namespace eofaas::proxy
