// How the HTTP/1.1 ingress speaks: its one route, the request body as an InvokeRequest, and a
// call's status and response as an HTTP answer. Pure functions; the connections are
// http_ingress.h's.
//
//   POST /v1/functions/{name}:invoke   {"cursor": {...}, "args": {...}, "timeout": "1.5s"}
//   200  the result bytes (X-Eofaas-Replica, X-Eofaas-Attempts)
//   200  X-Eofaas-Function-Error: handled|unhandled, {"error":{"type":"...","message":"..."}}
//   4xx/5xx  {"error":{"code":"NOT_FOUND","message":"..."}}
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "eofaas/v1/invoker.pb.h"
#include "proxy/dispatch/dispatcher.h"

namespace eofaas::proxy {

/// What the ingress sends back. Header names and the content type are string literals.
struct HttpAnswer {
  int status = 200;
  std::string_view content_type;
  absl::InlinedVector<std::pair<std::string_view, std::string>, 3> headers;
  std::string body;
};

/// The function `target` names when it is `/v1/functions/{name}:invoke` (in origin or absolute
/// form: `http://host/v1/...`), nullopt otherwise. The name is returned as written:
/// InvokeRequest validation judges it.
std::optional<std::string_view> InvokeRoute(std::string_view target);

/// The answer to a request that is not an invoke: 404 for another target, 405 (with `Allow`) for
/// another method than POST, 415 for a body declared other than JSON. nullopt for an invoke.
std::optional<HttpAnswer> RejectRequestLine(std::string_view method, std::string_view target,
                                            std::string_view content_type);

/// An invoke as an HTTP body states it: the InvokeRequest without its args, and the args as the
/// JSON object text that goes to replicas. Meant to be reused from request to request (its
/// memory is kept).
struct InvokeBody {
  eofaas::v1::InvokeRequest request;
  std::string args_json;
  /// The previous request's cursor, cleared: the next one takes it back rather than allocate a
  /// cursor and its strings again (InvokeRequest::Clear frees them).
  std::unique_ptr<eofaas::v1::DataCursor> spare_cursor;
};

/// Reads `body`, a JSON object with the InvokeRequest fields `cursor`, `args` and `timeout` in
/// their proto3 JSON form, into `out` as the request to run `function`. Means what protobuf's
/// JSON parser makes of it; `args` is kept as the body wrote it when ParseCommonInvokeBody reads
/// the body, printed by protobuf otherwise, and "{}" when absent. INVALID_ARGUMENT naming `body`
/// for anything else (unknown fields and `function` included: the path names it), or `args` when
/// protobuf cannot print them.
absl::Status ParseInvokeBody(std::string_view function, std::string_view body, InvokeBody& out);

/// The fast reading behind ParseInvokeBody, of the form clients send: an object of `cursor`
/// (uri, offset, length, framing, part, parts, size, etag; strings of printable ASCII, escapes
/// but \u allowed, int64 as integers or decimal strings, framing by name), `args` (any JSON object
/// of plain numbers and ASCII strings, without duplicate keys, within a modest depth) and
/// `timeout` (a non-negative Duration string), each at most once. Fills `out` (but its `function`)
/// and returns true, or returns false for anything else, valid or not, leaving `out` unspecified:
/// protobuf's parser decides then. Never accepts what protobuf's parser would refuse or read
/// differently.
bool ParseCommonInvokeBody(std::string_view body, InvokeBody& out);

/// The HTTP status standing for a failed call's code: INVALID_ARGUMENT 400, PERMISSION_DENIED
/// 403, NOT_FOUND 404, RESOURCE_EXHAUSTED 429, CANCELLED 499, UNAVAILABLE 503,
/// DEADLINE_EXCEEDED 504, anything else 500.
int HttpStatusOf(absl::StatusCode code);

/// A failed request or call: its HTTP status and `{"error":{"code","message"}}`.
HttpAnswer ErrorAnswer(const absl::Status& status);

/// A call's answer: ErrorAnswer for a failed call; for an OK one the result bytes (moved out of
/// `outcome`), or the function error as replicas report it (the header and
/// `{"error":{"type","message"}}`).
HttpAnswer InvokeAnswer(InvokeOutcome& outcome);

/// Appends the status line and header fields of `answer` to `out`, ending with the empty line:
/// Content-Length of its body, and `Connection: close` unless `keep_alive` (`Connection:
/// keep-alive` for HTTP/1.0). `version` is 10 or 11, as the request's.
void AppendResponseHead(const HttpAnswer& answer, unsigned version, bool keep_alive,
                        std::string& out);

}  // namespace eofaas::proxy
