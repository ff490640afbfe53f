#include "proxy/dispatch/connection_pool.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>

#include "absl/strings/numbers.h"

namespace eofaas::proxy {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// "host:port" or "[v6]:port" → {host, port}; port empty when missing.
std::pair<std::string, std::string> SplitHostPort(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return {address, ""};
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return {host, address.substr(colon + 1)};
}

}  // namespace

ConnectionPool::ConnectionPool(std::string address, size_t max_idle, size_t loops)
    : address_(std::move(address)),
      max_idle_(std::max<size_t>(max_idle, 1)),
      idle_(loops),
      gathering_(loops) {
  auto [host, port_text] = SplitHostPort(address_);
  boost::system::error_code error;
  auto ip = asio::ip::make_address(host, error);
  uint32_t port = 0;
  if (!error && absl::SimpleAtoi(port_text, &port) && port <= 65535) {
    endpoint_.emplace(ip, static_cast<uint16_t>(port));
  }
}

ConnectionPool::~ConnectionPool() { Close(); }

std::shared_ptr<TcpConnection> ConnectionPool::Take(size_t loop, bool join) {
  std::lock_guard lock(mu_);
  if (auto gathering = join ? gathering_[loop].lock() : nullptr;
      gathering && gathering->joinable()) {
    return gathering;
  }
  std::vector<std::shared_ptr<TcpConnection>>& idle = idle_[loop];
  if (idle.empty()) return nullptr;
  std::shared_ptr<TcpConnection> connection = std::move(idle.back());
  idle.pop_back();
  connection->StopWatching();
  return connection;
}

void ConnectionPool::Gather(size_t loop, const std::shared_ptr<TcpConnection>& connection) {
  std::lock_guard lock(mu_);
  gathering_[loop] = connection;
}

void ConnectionPool::Return(size_t loop, std::shared_ptr<TcpConnection> connection) {
  if (connection->busy()) return;
  {
    std::lock_guard lock(mu_);
    if (connection->reusable() && !closed_ && idle_[loop].size() < max_idle()) {
      connection->WatchIdle([pool = weak_from_this(), loop, watched = connection.get()] {
        if (auto self = pool.lock()) self->Discard(loop, watched);
      });
      idle_[loop].push_back(std::move(connection));
      return;
    }
  }
  connection->Abort();
}

void ConnectionPool::Discard(size_t loop, const TcpConnection* connection) {
  std::shared_ptr<TcpConnection> discarded;
  {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<TcpConnection>>& idle = idle_[loop];
    auto it = std::find_if(idle.begin(), idle.end(),
                           [&](const auto& kept) { return kept.get() == connection; });
    if (it == idle.end()) return;  // taken (or the pool closed) meanwhile
    discarded = std::move(*it);
    idle.erase(it);
  }
  discarded->Abort();
}

void ConnectionPool::Close() {
  std::vector<std::vector<std::shared_ptr<TcpConnection>>> idle;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    for (auto& loop : idle_) idle.push_back(std::move(loop));
  }
  // Closed on their loops: a socket is only ever touched by its loop's thread, which lets the
  // loops skip the reactor's per-socket locks (EventLoops).
  for (auto& loop : idle) {
    for (auto& connection : loop) {
      const LoopExecutor executor = connection->stream().get_executor();
      boost::asio::post(executor, [connection = std::move(connection)] { connection->Abort(); });
    }
  }
}

void ConnectionPool::Endpoint(const LoopExecutor& loop, EndpointDone done) {
  std::optional<tcp::endpoint> known;
  {
    std::lock_guard lock(mu_);
    known = endpoint_;
  }
  if (known) return std::move(done)(boost::system::error_code(), *known);
  auto [host, port] = SplitHostPort(address_);
  auto resolver = std::make_shared<asio::ip::basic_resolver<tcp, LoopExecutor>>(loop);
  resolver->async_resolve(
      host, port,
      [this, resolver, done = std::move(done)](
          boost::system::error_code error, asio::ip::basic_resolver_results<tcp> results) mutable {
        if (!error && results.empty()) error = asio::error::host_not_found;
        if (error) return std::move(done)(error, tcp::endpoint());
        tcp::endpoint endpoint = results.begin()->endpoint();
        {
          std::lock_guard lock(mu_);
          endpoint_ = endpoint;
        }
        std::move(done)(error, endpoint);
      });
}

}  // namespace eofaas::proxy
