// The HTTP/1.1 front of eofaas-proxy: `POST /v1/functions/{name}:invoke` runs one cursor through
// StartInvoke (invoke_call.h), like the gRPC Invoke. The wire format is http_translation.h's;
// this file owns the listening socket and the keep-alive connections (Boost.Asio), whose
// requests request_parser.h reads.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proxy/dispatch/event_loops.h"
#include "proxy/ingress/ingress.h"

namespace eofaas::proxy {

struct HttpIngressOptions {
  /// host:port; port 0 lets the kernel choose (see port()).
  std::string listen = "127.0.0.1:8080";
  /// Larger request bodies are answered 413.
  uint64_t max_body_bytes = 1 << 20;
  /// A keep-alive connection waiting this long for its next request is closed, and a request
  /// must arrive whole within it.
  absl::Duration idle_timeout = absl::Seconds(75);
};

/// Serves on `loops`, each connection on one loop (the loops in turn), one request at a time per
/// connection (pipelined requests wait their turn). A connection's invocations run on its loop
/// too, so a request is read, dispatched and answered without leaving its thread. A connection
/// keeps its buffers, request parser state and call group from request to request, and writes
/// each answer at once when the socket takes it. Thread-safe. `services` and `loops` must
/// outlive it.
class HttpIngress {
 public:
  /// Binds and starts accepting. INVALID_ARGUMENT for an unusable address, UNAVAILABLE when it
  /// cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpIngress>> Start(EventLoops& loops,
                                                            const IngressServices& services,
                                                            HttpIngressOptions options);
  /// Shutdown(zero) unless it was called.
  ~HttpIngress();

  int port() const { return port_; }

  /// Stops accepting and closes idle connections; requests in progress get up to `grace` to be
  /// answered (with `Connection: close`), then are cancelled and their connections closed.
  /// Returns once every connection is gone. Not from one of the loops' threads.
  void Shutdown(absl::Duration grace);

 private:
  class Connection;

  HttpIngress(EventLoops& loops, const IngressServices& services, HttpIngressOptions options);

  boost::asio::awaitable<void> Accept();

  /// Runs `action` on the loop of every open connection.
  template <typename Action>
  void ForEachConnection(Action action);
  void Forget(Connection* connection);
  bool Draining() const { return draining_.load(std::memory_order_relaxed); }

  EventLoops& loops_;
  const IngressServices& services_;
  const HttpIngressOptions options_;
  boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, LoopExecutor> acceptor_;
  int port_ = 0;

  // Set once, by Shutdown; read by every request (keep-alive or not).
  std::atomic<bool> draining_{false};
  absl::Mutex mu_;
  bool accepting_ ABSL_GUARDED_BY(mu_) = false;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<Connection*, std::shared_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
};

}  // namespace eofaas::proxy
