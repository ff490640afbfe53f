#include "proxy/ingress/http_ingress.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/ingress/http_translation.h"
#include "proxy/ingress/invoke_call.h"

namespace eofaas::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;

constexpr uint32_t kMaxHeaderBytes = 16 << 10;
constexpr std::chrono::seconds kLingerTimeout(2);

// StartInvoke as an asynchronous operation: completes with the call's status on the executor of
// the awaiting coroutine.
template <typename Token>
auto AsyncInvoke(const IngressServices& services, const eofaas::v1::InvokeRequest& request,
                 std::shared_ptr<CallGroup> group, eofaas::v1::InvokeResponse& response,
                 Token&& token) {
  return asio::async_initiate<Token, void(absl::Status)>(
      [&services, &request, &response, group](auto handler) mutable {
        auto executor = asio::get_associated_executor(handler);
        StartInvoke(services, request, std::nullopt, std::move(group), response,
                    [handler = std::move(handler), executor](absl::Status status) mutable {
                      asio::post(executor, [handler = std::move(handler),
                                            status = std::move(status)]() mutable {
                        std::move(handler)(std::move(status));
                      });
                    });
      },
      token);
}

// Runs an invoke request; `group` holds its call group meanwhile, so that it can be cancelled.
asio::awaitable<HttpAnswer> Invoke(const IngressServices& services, const Request& request,
                                   std::shared_ptr<CallGroup>& group) {
  const std::string_view function = *InvokeRoute(request.target());
  absl::StatusOr<eofaas::v1::InvokeRequest> invoke = ParseInvokeBody(function, request.body());
  if (!invoke.ok()) co_return ErrorAnswer(invoke.status());
  group = std::make_shared<CallGroup>();
  eofaas::v1::InvokeResponse response;
  absl::Status status =
      co_await AsyncInvoke(services, *invoke, group, response, asio::use_awaitable);
  group.reset();
  co_return InvokeAnswer(status, response);
}

http::response<http::string_body> ToResponse(HttpAnswer answer, unsigned version, bool keep_alive) {
  http::response<http::string_body> response(static_cast<http::status>(answer.status), version);
  if (!answer.content_type.empty()) response.set(http::field::content_type, answer.content_type);
  for (auto& [name, value] : answer.headers) response.set(name, value);
  response.body() = std::move(answer.body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

// The answer to a request that could not be read, or nullopt when the connection just ended
// (closed, reset, timed out or shut down).
std::optional<HttpAnswer> ReadFailureAnswer(const beast::error_code& error, bool got_some) {
  const bool malformed =
      error.category() == http::make_error_code(http::error::bad_target).category();
  if (!got_some || !malformed || error == http::error::end_of_stream ||
      error == http::error::partial_message) {
    return std::nullopt;
  }
  HttpAnswer answer = ErrorAnswer(absl::InvalidArgumentError(
      absl::StrCat("request: not valid HTTP/1.1 (", error.message(), ")")));
  if (error == http::error::body_limit || error == http::error::header_limit) {
    answer.status = error == http::error::body_limit ? 413 : 431;
  }
  return answer;
}

}  // namespace

struct HttpIngress::Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}

  // On the connection's strand only, like `idle` and `group`.
  beast::tcp_stream stream;
  // Waiting for the next request (rather than working on one).
  bool idle = true;
  // The request in progress.
  std::shared_ptr<CallGroup> group;
};

HttpIngress::HttpIngress(asio::io_context& io, const IngressServices& services,
                         HttpIngressOptions options)
    : io_(io),
      services_(services),
      options_(std::move(options)),
      acceptor_(asio::make_strand(io)) {}

absl::StatusOr<std::unique_ptr<HttpIngress>> HttpIngress::Start(asio::io_context& io,
                                                                const IngressServices& services,
                                                                HttpIngressOptions options) {
  const std::string listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  boost::system::error_code error;
  asio::ip::address address;
  if (colon != std::string::npos) {
    address = asio::ip::make_address(listen.substr(0, colon), error);
    if (!absl::SimpleAtoi(listen.substr(colon + 1), &port)) port = -1;
  }
  if (colon == std::string::npos || error || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("http_listen: ", listen, " is not an IP address and port"));
  }
  auto ingress = std::unique_ptr<HttpIngress>(new HttpIngress(io, services, std::move(options)));
  tcp::acceptor& acceptor = ingress->acceptor_;
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("http_listen: cannot listen on ", listen, ": ", error.message()));
  }
  ingress->port_ = acceptor.local_endpoint().port();
  {
    absl::MutexLock lock(&ingress->mu_);
    ingress->accepting_ = true;
  }
  asio::co_spawn(acceptor.get_executor(), ingress->Accept(), asio::detached);
  return ingress;
}

HttpIngress::~HttpIngress() { Shutdown(absl::ZeroDuration()); }

asio::awaitable<void> HttpIngress::Accept() {
  asio::steady_timer pause(acceptor_.get_executor());
  for (;;) {
    auto strand = asio::make_strand(io_);
    auto [error, socket] =
        co_await acceptor_.async_accept(strand, asio::as_tuple(asio::use_awaitable));
    if (error == asio::error::operation_aborted || !acceptor_.is_open()) break;
    if (error) {
      // Out of descriptors, most likely: let connections end rather than spin.
      common::LogWarning("http ingress: accept: ", error.message());
      pause.expires_after(std::chrono::milliseconds(100));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto connection = std::make_shared<Connection>(std::move(socket));
    {
      absl::MutexLock lock(&mu_);
      if (draining_) continue;  // the socket closes with the connection
      connections_.emplace(connection.get(), connection);
    }
    asio::co_spawn(strand, Serve(std::move(connection)), asio::detached);
  }
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

asio::awaitable<void> HttpIngress::Serve(std::shared_ptr<Connection> connection) {
  beast::tcp_stream& stream = connection->stream;
  beast::flat_buffer buffer;
  for (bool keep_alive = true; keep_alive && !Draining();) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(options_.max_body_bytes);
    parser.header_limit(kMaxHeaderBytes);
    connection->idle = true;
    stream.expires_after(absl::ToChronoNanoseconds(options_.idle_timeout));
    auto [read_error, read] =
        co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    connection->idle = false;
    std::optional<http::response<http::string_body>> response;
    if (read_error) {
      std::optional<HttpAnswer> answer = ReadFailureAnswer(read_error, parser.got_some());
      if (!answer) break;
      response = ToResponse(*std::move(answer), 11, false);
      keep_alive = false;
    } else {
      stream.expires_never();
      Request request = parser.release();
      std::optional<HttpAnswer> answer = RejectRequestLine(
          request.method_string(), request.target(), request[http::field::content_type]);
      if (!answer) answer = co_await Invoke(services_, request, connection->group);
      keep_alive = request.keep_alive() && !Draining();
      response = ToResponse(*std::move(answer), request.version(), keep_alive);
    }
    stream.expires_after(absl::ToChronoNanoseconds(options_.idle_timeout));
    auto [write_error, written] =
        co_await http::async_write(stream, *response, asio::as_tuple(asio::use_awaitable));
    if (write_error) break;
  }
  // A lingering close: the client may still be sending (a body answered 413 before it was read).
  // Closing at once would reset the connection and lose the answer, so the rest is read and
  // dropped until the client closes, for a short while at most.
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.expires_after(kLingerTimeout);
  for (char discard[16 << 10];;) {
    auto [error, read] =
        co_await stream.async_read_some(asio::buffer(discard), asio::as_tuple(asio::use_awaitable));
    if (error) break;
  }
  stream.close();
  Forget(connection.get());
}

bool HttpIngress::Draining() {
  absl::MutexLock lock(&mu_);
  return draining_;
}

template <typename Action>
void HttpIngress::ForEachConnection(Action action) {
  absl::MutexLock lock(&mu_);
  for (const auto& [_, connection] : connections_) {
    asio::post(connection->stream.get_executor(), [connection, action] { action(*connection); });
  }
}

void HttpIngress::Forget(Connection* connection) {
  absl::MutexLock lock(&mu_);
  connections_.erase(connection);
}

void HttpIngress::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    draining_ = true;
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  // Idle connections close now; busy ones after their answer.
  ForEachConnection([](Connection& connection) {
    if (connection.idle) connection.stream.close();
  });
  auto all_gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !accepting_ && connections_.empty();
  };
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&all_gone), grace);
  }
  ForEachConnection([](Connection& connection) {
    if (connection.group) connection.group->Cancel();
    connection.stream.close();
  });
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&all_gone));
}

}  // namespace eofaas::proxy
