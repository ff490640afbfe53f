// One keep-alive HTTP/1.1 connection to a replica: POST a request, read the answer before a
// deadline and within a body limit. Templated on the stream so tests drive it with an in-memory
// stream (beast::test::stream); production uses a TCP socket.
#pragma once

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "proxy/dispatch/response_parser.h"

namespace eofaas::proxy {

/// How a round trip ended.
enum class HttpError {
  kNone,          ///< A complete response was read.
  kClosed,        ///< The peer closed or reset the connection, or writing failed.
  kTimeout,       ///< The deadline passed first.
  kAborted,       ///< Abort() was called.
  kBodyTooLarge,  ///< The response body exceeds the limit.
  kProtocol,      ///< The response is not valid HTTP/1.x.
};

struct HttpResult {
  HttpError error = HttpError::kNone;
  /// At least one response byte arrived. A request on a reused connection that failed before
  /// that most likely met a keep-alive connection the peer had just closed, and may be sent again
  /// on a fresh connection.
  bool response_started = false;
  int status = 0;
  FunctionErrorHeader function_error = FunctionErrorHeader::kNone;
  std::string body;
  /// The underlying error, for messages.
  boost::system::error_code detail;
};

struct HttpClientOptions {
  uint64_t max_response_bytes = 64 << 20;
  uint32_t max_header_bytes = 16 << 10;
};

/// Must be owned by a std::shared_ptr (the deadline timer keeps it alive). Not thread-safe: one
/// round trip at a time, and Abort() only from the executor that runs it.
template <typename Stream>
class HttpClientConnection : public std::enable_shared_from_this<HttpClientConnection<Stream>> {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  /// `host` is sent as the Host header.
  HttpClientConnection(Stream stream, std::string host, const HttpClientOptions& options)
      : stream_(std::move(stream)),
        timer_(stream_.get_executor()),
        host_(std::move(host)),
        options_(options) {}

  /// Sends `POST target` with the body `body_head` + `body_tail` (a fixed head goes out with a
  /// per-request tail without being copied) and reads the response, all before `deadline`.
  boost::asio::awaitable<HttpResult> RoundTrip(std::string_view target, std::string_view body_head,
                                               std::string_view body_tail, TimePoint deadline);

  /// Opens the TCP connection before `deadline` (asio::error::timed_out when it passes first).
  boost::asio::awaitable<boost::system::error_code> Connect(
      const boost::asio::ip::tcp::endpoint& endpoint,
      TimePoint deadline) requires std::is_same_v<Stream, boost::asio::ip::tcp::socket>;

  /// Closes the stream: a round trip or connect in progress ends with kAborted, and the
  /// connection is not reusable.
  void Abort() {
    aborted_ = true;
    Close();
  }

  /// The last round trip ended cleanly and the peer keeps the connection open.
  bool reusable() const { return reusable_; }

  /// When the last round trip ended: an idle connection's age.
  TimePoint last_used() const { return last_used_; }

  Stream& stream() { return stream_; }

 private:
  // Arms the deadline: when it passes first, the stream is closed, which ends the pending
  // operation. The handler runs on the caller's executor, like the operations it cancels.
  template <typename Executor>
  void ArmDeadline(const Executor& executor, TimePoint deadline) {
    timed_out_ = false;
    timer_.expires_at(deadline);
    timer_.async_wait(boost::asio::bind_executor(
        executor, [self = this->shared_from_this()](const boost::system::error_code& error) {
          if (error) return;  // cancelled: the operation finished first
          self->timed_out_ = true;
          self->Close();
        }));
  }

  // True when the deadline handler has not fired (so it will not touch the stream later).
  bool DisarmDeadline() { return timer_.cancel() == 1; }

  void Close() {
    boost::system::error_code ignored;
    if constexpr (std::is_same_v<Stream, boost::asio::ip::tcp::socket>) {
      stream_.close(ignored);
    } else {
      stream_.close();
    }
  }

  HttpError ErrorKind(const boost::system::error_code& error) const;

  Stream stream_;
  boost::asio::steady_timer timer_;
  const std::string host_;
  const HttpClientOptions options_;
  std::string head_;  // request line and header fields, reused
  boost::beast::flat_buffer buffer_;
  TimePoint last_used_{};
  bool reusable_ = false;
  bool timed_out_ = false;
  bool aborted_ = false;
};

template <typename Stream>
boost::asio::awaitable<HttpResult> HttpClientConnection<Stream>::RoundTrip(
    std::string_view target, std::string_view body_head, std::string_view body_tail,
    TimePoint deadline) {
  namespace asio = boost::asio;
  HttpResult result;
  reusable_ = false;
  if (aborted_) {
    result.error = HttpError::kAborted;
    co_return result;
  }
  char length[24];
  auto length_end =
      std::to_chars(length, length + sizeof(length), body_head.size() + body_tail.size()).ptr;
  head_.clear();
  head_.append("POST ").append(target).append(" HTTP/1.1\r\nHost: ").append(host_);
  head_.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  head_.append(length, length_end).append("\r\n\r\n");
  const std::array<asio::const_buffer, 3> request = {
      asio::buffer(head_), asio::buffer(body_head.data(), body_head.size()),
      asio::buffer(body_tail.data(), body_tail.size())};

  ArmDeadline(co_await asio::this_coro::executor, deadline);
  auto [write_error, written] =
      co_await asio::async_write(stream_, request, asio::as_tuple(asio::use_awaitable));
  std::optional<ResponseParser> parser;
  boost::system::error_code error = write_error;
  if (!error) {
    parser.emplace(options_.max_response_bytes, options_.max_header_bytes);
    auto [read_error, read] = co_await boost::beast::http::async_read(
        stream_, buffer_, *parser, asio::as_tuple(asio::use_awaitable));
    error = read_error;
    result.response_started = parser->got_some();
  }
  const bool deadline_pending = DisarmDeadline();
  last_used_ = std::chrono::steady_clock::now();

  if (error) {
    result.error = ErrorKind(error);
    result.detail = error;
    buffer_.clear();
    co_return result;
  }
  result.status = parser->status();
  result.function_error = parser->function_error();
  result.body = std::move(parser->body());
  // Bytes past the response mean the peer and this client disagree on framing: start afresh.
  reusable_ = parser->keep_alive() && deadline_pending && !aborted_ && buffer_.size() == 0;
  buffer_.clear();
  co_return result;
}

template <typename Stream>
boost::asio::awaitable<boost::system::error_code> HttpClientConnection<Stream>::Connect(
    const boost::asio::ip::tcp::endpoint& endpoint,
    TimePoint deadline) requires std::is_same_v<Stream, boost::asio::ip::tcp::socket> {
  namespace asio = boost::asio;
  if (aborted_) co_return asio::error::operation_aborted;
  ArmDeadline(co_await asio::this_coro::executor, deadline);
  auto [error] = co_await stream_.async_connect(endpoint, asio::as_tuple(asio::use_awaitable));
  DisarmDeadline();
  if (timed_out_) co_return asio::error::timed_out;
  if (aborted_) co_return asio::error::operation_aborted;
  if (!error) {
    // Head and body go out in one write, but small responses must not wait for delayed ACKs.
    stream_.set_option(asio::ip::tcp::no_delay(true), error);
  }
  co_return error;
}

template <typename Stream>
HttpError HttpClientConnection<Stream>::ErrorKind(const boost::system::error_code& error) const {
  namespace http = boost::beast::http;
  if (timed_out_) return HttpError::kTimeout;
  if (aborted_) return HttpError::kAborted;
  if (error == http::error::body_limit) return HttpError::kBodyTooLarge;
  if (error == http::error::end_of_stream || error == http::error::partial_message) {
    return HttpError::kClosed;
  }
  if (error.category() == http::make_error_code(http::error::bad_version).category()) {
    return HttpError::kProtocol;  // the rest of Beast's parse errors
  }
  return HttpError::kClosed;  // reset, broken pipe, EOF
}

}  // namespace eofaas::proxy
