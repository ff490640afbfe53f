// An in-process replica for dispatcher tests: an HTTP/1.1 keep-alive server on loopback whose
// answers a test scripts, counting connections, requests and concurrency.
#pragma once

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace eofaas::tests {

struct FakeResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds delay{0};
  /// Close the connection after answering, without saying so (a replica that drops idle
  /// keep-alive connections).
  bool close_after = false;
  /// Close the connection at once, with no answer (a replica that crashes on the request).
  bool close_instead = false;
  /// Bytes written on the connection 10 ms after the answer, which no request asked for.
  std::string stray;
};

/// Serves on its own thread. Thread-safe accessors.
class FakeReplica {
 public:
  using Handler = std::function<FakeResponse(const std::string&)>;

  /// `handler` gets each request body; it runs on the replica's thread.
  explicit FakeReplica(Handler handler)
      : handler_(std::move(handler)),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}) {
    address_ = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    boost::asio::co_spawn(io_, Accept(), boost::asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeReplica() {
    io_.stop();
    thread_.join();
  }

  const std::string& address() const { return address_; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }
  int max_concurrent() const { return max_concurrent_; }
  std::vector<std::string> bodies() const {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  boost::asio::awaitable<void> Accept() {
    for (;;) {
      auto [error, socket] =
          co_await acceptor_.async_accept(boost::asio::as_tuple(boost::asio::use_awaitable));
      if (error) co_return;
      ++connections_;
      boost::asio::co_spawn(io_, Serve(std::move(socket)), boost::asio::detached);
    }
  }

  boost::asio::awaitable<void> Serve(boost::asio::ip::tcp::socket socket) {
    namespace http = boost::beast::http;
    using boost::asio::as_tuple;
    using boost::asio::use_awaitable;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::request<http::string_body> request;
      auto [read_error, n] =
          co_await http::async_read(socket, buffer, request, as_tuple(use_awaitable));
      if (read_error) co_return;
      ++requests_;
      const int now = ++concurrent_;
      for (int seen = max_concurrent_;
           now > seen && !max_concurrent_.compare_exchange_weak(seen, now);) {
      }
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(request.body());
      }
      FakeResponse answer = handler_(request.body());
      if (answer.close_instead) {
        --concurrent_;
        co_return;
      }
      if (answer.delay.count() > 0) {
        boost::asio::steady_timer timer(socket.get_executor(), answer.delay);
        co_await timer.async_wait(as_tuple(use_awaitable));
      }
      --concurrent_;
      http::response<http::string_body> response(static_cast<http::status>(answer.status), 11);
      for (auto& [name, value] : answer.headers) response.set(name, value);
      response.body() = answer.body;
      response.prepare_payload();
      auto [write_error, written] =
          co_await http::async_write(socket, response, as_tuple(use_awaitable));
      if (write_error || answer.close_after) co_return;
      if (!answer.stray.empty()) {
        boost::asio::steady_timer timer(socket.get_executor(), std::chrono::milliseconds(10));
        co_await timer.async_wait(as_tuple(use_awaitable));
        co_await boost::asio::async_write(socket, boost::asio::buffer(answer.stray),
                                          as_tuple(use_awaitable));
      }
    }
  }

  Handler handler_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::string address_;
  std::thread thread_;
  std::atomic<int> connections_{0}, requests_{0}, concurrent_{0}, max_concurrent_{0};
  mutable std::mutex mu_;
  std::vector<std::string> bodies_;
};

}  // namespace eofaas::tests
