// HTTP/1.1 over TLS to the API server, one connection per exchange: the TLS set-up a KubeConfig
// asks for (its CA or the system's roots, the server's name checked, an optional client
// certificate), a deadline on every step, and a response body either collected whole or handed
// over piece by piece as it arrives (watches). Nothing here knows Kubernetes' API.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <boost/beast/http/verb.hpp>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "control/k8s/client/kube_config.h"

namespace eofaas::control::k8s {

struct HttpRequest {
  boost::beast::http::verb method = boost::beast::http::verb::get;
  /// Path and query, without the server's path prefix.
  std::string target;
  /// The body's media type; empty when there is no body.
  std::string content_type;
  std::string body;
  /// Sent as "Authorization: Bearer <token>" unless empty.
  std::string bearer_token;
};

struct HttpResponse {
  int status = 0;
  /// The whole body; empty for a 200 answer to Stream, whose body went to the callback.
  std::string body;
};

/// Thread-safe: exchanges share nothing but the TLS context and run on the caller's thread.
class HttpsTransport {
 public:
  /// Receives a streamed body piece by piece; an error ends the exchange and is returned.
  using BodyCallback = std::function<absl::Status(std::string_view piece)>;

  /// INVALID_ARGUMENT naming the field for a server URL that is not https:// or for credentials
  /// (PEM) that do not load.
  static absl::StatusOr<std::unique_ptr<HttpsTransport>> Create(const KubeConfig& config);

  /// Sends `request` on a new connection and reads the whole response, all within `timeout`.
  /// Errors: DEADLINE_EXCEEDED when the time runs out, UNAVAILABLE when the server cannot be
  /// reached, the TLS handshake fails (the message says why, e.g. "certificate verify failed")
  /// or the connection breaks, RESOURCE_EXHAUSTED for a body over 64 MiB.
  absl::StatusOr<HttpResponse> RoundTrip(const HttpRequest& request, absl::Duration timeout);

  /// Like RoundTrip up to the response header, which must arrive within `timeout`. A 200
  /// response's body then goes to `on_body` as it arrives (chunked transfer decoded), each read
  /// allowed `idle_timeout`, until the server ends it (the 200 is returned) or `on_body` fails
  /// (its error is returned). Any other response is returned whole. Once `stop` is requested,
  /// whatever step is under way is cancelled and CANCELLED returned.
  absl::StatusOr<HttpResponse> Stream(const HttpRequest& request, absl::Duration timeout,
                                      absl::Duration idle_timeout, const BodyCallback& on_body,
                                      std::stop_token stop);

  /// The server, as configured: for messages.
  const std::string& server() const { return server_; }

 private:
  HttpsTransport() = default;
  absl::StatusOr<HttpResponse> Exchange(const HttpRequest& request, absl::Duration timeout,
                                        absl::Duration idle_timeout, const BodyCallback* on_body,
                                        std::stop_token stop);

  std::string server_;
  std::string host_;
  std::string port_;
  /// host[:port] as in the URL, the Host header.
  std::string authority_;
  std::string path_prefix_;
  bool verify_ = true;
  std::unique_ptr<boost::asio::ssl::context> tls_;
};

}  // namespace eofaas::control::k8s
