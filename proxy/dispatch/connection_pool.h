// Idle keep-alive connections to one replica, so that a request rarely pays for a TCP handshake.
#pragma once

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "proxy/dispatch/event_loops.h"
#include "proxy/dispatch/http_client_connection.h"

namespace eofaas::proxy {

using TcpSocket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, LoopExecutor>;
using TcpConnection = HttpClientConnection<TcpSocket>;

/// Thread-safe; owned by a std::shared_ptr. A connection belongs to the event loop that opened it
/// and is only handed out to calls on that loop, so its I/O never crosses threads. Idle
/// connections are handed out most recently used first (the warmest). Each is watched while idle,
/// and closed as soon as the replica closes it or sends bytes no request asked for: a connection
/// handed out never carries a stale answer over to the next request. The dispatcher bounds the
/// idle connections of each loop by the replica's concurrency: no more can be in use at once, and
/// with fewer a busy replica's connections would be closed and opened again all along. With
/// pipelining, the requests of one turn of a loop share the connection that gathers them.
class ConnectionPool : public std::enable_shared_from_this<ConnectionPool> {
 public:
  /// `address` is "host:port" (IPv6 hosts in brackets); at most `max_idle` idle connections are
  /// kept per loop (values below 1 count as 1), for loops 0 to `loops` - 1.
  ConnectionPool(std::string address, size_t max_idle, size_t loops);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  const std::string& address() const { return address_; }

  size_t max_idle() const { return max_idle_.load(std::memory_order_relaxed); }
  /// Changes the bound (the replica's concurrency changed). A lower bound takes effect as
  /// connections are returned.
  void set_max_idle(size_t max_idle) {
    max_idle_.store(std::max<size_t>(max_idle, 1), std::memory_order_relaxed);
  }

  /// A connection of `loop` for a request: when `join`, the one gathering a pipelined batch if it
  /// has room (see Gather), else an idle one, else null. Called on `loop`.
  std::shared_ptr<TcpConnection> Take(size_t loop, bool join);

  /// Offers `connection`, of `loop`, for the next requests to join while it is joinable().
  /// Called on `loop`.
  void Gather(size_t loop, const std::shared_ptr<TcpConnection>& connection);

  /// Keeps `connection`, opened on `loop`, for a later request when it is reusable, the pool is
  /// open and below its bound; closes it otherwise. A connection still busy with other requests
  /// pipelined on it is left to them. Called on `loop`.
  void Return(size_t loop, std::shared_ptr<TcpConnection> connection);

  /// Closes the idle connections, each on its loop; later Returns close theirs too.
  void Close();

  using EndpointDone =
      absl::AnyInvocable<void(boost::system::error_code, boost::asio::ip::tcp::endpoint) &&>;
  /// The replica's TCP endpoint: parsed from an IP address (`done` runs inline), or resolved once
  /// from a host name on the resolver of `loop` (discovery normally gives IP addresses). The
  /// pool must outlive `done`.
  void Endpoint(const LoopExecutor& loop, EndpointDone done);

 private:
  // Closes an idle connection of `loop` that became unusable, unless it was taken meanwhile.
  void Discard(size_t loop, const TcpConnection* connection);

  const std::string address_;
  std::atomic<size_t> max_idle_;
  std::mutex mu_;                                                  // guards the members below
  std::vector<std::vector<std::shared_ptr<TcpConnection>>> idle_;  // per loop
  std::vector<std::weak_ptr<TcpConnection>> gathering_;            // per loop
  std::optional<boost::asio::ip::tcp::endpoint> endpoint_;
  bool closed_ = false;
};

}  // namespace eofaas::proxy
