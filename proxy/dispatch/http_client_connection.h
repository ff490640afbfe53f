// One keep-alive HTTP/1.1 connection to a replica: POST a request, read the answer before a
// deadline and within a body limit; or, pipelined, several requests written together and their
// answers read in order. Templated on the stream so tests drive it with an in-memory stream
// (beast::test::stream); production uses a TCP socket.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <charconv>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "proxy/dispatch/deadline_sweep.h"
#include "proxy/dispatch/response_parser.h"
#include "proxy/dispatch/socket_readiness.h"

namespace eofaas::proxy {

/// How a round trip ended.
enum class HttpError {
  kNone,          ///< A complete response was read.
  kClosed,        ///< The peer closed or reset the connection, or writing failed.
  kTimeout,       ///< The deadline passed first.
  kAborted,       ///< Abort() was called.
  kDisplaced,     ///< Another round trip pipelined on the connection ended it first (its deadline
                  ///< passed, its answer was invalid or closed the connection); this request may
                  ///< be sent again.
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
  /// Round trips one connection carries at once (HTTP/1.1 pipelining); 1 turns it off. Requests
  /// pipelined together are written with one send and answered in order, so each one waits for
  /// those before it: for calls of microseconds, where a system call costs more than the call.
  size_t max_pipeline = 1;
};

/// Must be owned by a std::shared_ptr (each pending operation keeps it alive). Not thread-safe:
/// one round trip at a time, or more while joinable(), and Abort() only from the executor that
/// runs them. Completions run on that executor, never inside the call that starts the operation.
/// Deadlines are kept by `deadlines`, so they are met within one of its ticks.
///
/// Pipelining (max_pipeline > 1): a round trip on an idle connection opens a batch, which the
/// round trips started before the executor's next turn join (joinable()); the batch goes out in
/// one write at that turn. A connection takes no other batch until every answer of this one came
/// back, and reads their answers while the batch is still being written (a peer that answers
/// the first requests before it reads the last ones never waits for this side to read). When a
/// round trip fails, or an answer closes the connection, the connection closes: that round trip
/// ends with its error, those behind it with kDisplaced (or kTimeout, kAborted when that is what
/// closed it).
template <typename Stream>
class HttpClientConnection : public std::enable_shared_from_this<HttpClientConnection<Stream>>,
                             private DeadlineSweep::Watched {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using RoundTripDone = absl::AnyInvocable<void(HttpResult) &&>;
  using ConnectDone = absl::AnyInvocable<void(boost::system::error_code) &&>;

  /// `host` is sent as the Host header.
  HttpClientConnection(Stream stream, std::string host, const HttpClientOptions& options,
                       std::shared_ptr<DeadlineSweep> deadlines)
      : stream_(std::move(stream)),
        deadlines_(std::move(deadlines)),
        host_(std::move(host)),
        options_(options) {}
  ~HttpClientConnection() override { deadlines_->Unwatch(*this); }

  /// A body whose head (see RoundTrip) is at most this size is copied next to the request's
  /// head; a larger one is written from the caller's memory: such a request is never pipelined.
  static constexpr size_t kMaxCopiedBody = 16 << 10;

  /// Sends `POST target` with the body `body_head` + `body_tail` and reads the response, all
  /// before `deadline`. `body_head` (the fixed part) must live until `done`; `body_tail` (the
  /// part of one attempt) is copied before RoundTrip returns. The connection must be idle, or
  /// joinable() when `body_head` is at most kMaxCopiedBody.
  void RoundTrip(std::string_view target, std::string_view body_head, std::string_view body_tail,
                 TimePoint deadline, RoundTripDone done);

  /// Opens the TCP connection before `deadline` (asio::error::timed_out when it passes first).
  void Connect(const boost::asio::ip::tcp::endpoint& endpoint, TimePoint deadline,
               ConnectDone done);

  /// Closes the stream: the round trips or connect in progress end with kAborted, and the
  /// connection is not reusable.
  void Abort() {
    aborted_ = true;
    Close();
  }

  /// The last round trip ended cleanly and the peer keeps the connection open.
  bool reusable() const { return reusable_; }
  /// Round trips are in progress.
  bool busy() const { return !pending_.empty(); }
  /// Another round trip may join the batch about to be written.
  bool joinable() const {
    return batch_open_ && !aborted_ && pending_.size() < options_.max_pipeline;
  }

  /// While the connection is idle: calls `unusable` on its executor once the peer closes it or
  /// sends bytes no request asked for, unless StopWatching() comes first. A TCP socket is watched
  /// without a system call while nothing happens (socket_readiness.h); other streams are not.
  void WatchIdle(absl::AnyInvocable<void() &&> unusable);
  /// Ends the watch before a round trip, without calling `unusable`.
  void StopWatching();

  Stream& stream() { return stream_; }

 private:
  // A round trip in progress.
  struct Pending {
    RoundTripDone done;
    TimePoint deadline;
  };

  // Watches the deadline of the operation about to start: when it passes first, the stream is
  // closed on its executor, which ends the pending operation.
  void ArmDeadline(TimePoint deadline) {
    timed_out_ = false;
    deadlines_->Watch(*this, deadline);
  }

  // Watches the earliest deadline of the round trips in progress, unless one already passed.
  void WatchPending() {
    if (DisarmDeadline()) return;
    TimePoint earliest = pending_.front().deadline;
    for (const Pending& pending : pending_) earliest = std::min(earliest, pending.deadline);
    deadlines_->Watch(*this, earliest);
  }

  // True when the deadline passed first: the stream is (or is about to be) closed.
  bool DisarmDeadline() {
    timed_out_ = deadlines_->Unwatch(*this) || timed_out_;
    return timed_out_;
  }

  void OnDeadline() override {
    auto self = this->weak_from_this().lock();
    if (self == nullptr) return;  // being destroyed: its stream closes anyway
    boost::asio::post(stream_.get_executor(), [self = std::move(self)] {
      self->timed_out_ = true;
      self->Close();
    });
  }

  void Close() {
    boost::system::error_code ignored;
    if constexpr (requires { stream_.native_handle(); }) {
      stream_.close(ignored);
    } else {
      stream_.close();
    }
  }

  // Writes the requests, then reads the responses.
  void Write();
  // The requests are out: reads the responses.
  void StartReading();
  // Reads until the parser holds a whole response: what Beast's http::async_read does, without
  // its layers of composed operations around each read. A TCP socket waits for the response's
  // first bytes without a read that finds nothing (socket_readiness.h). The rest of a response is
  // read at once: there a short read does not prove the socket drained, as the end of the
  // stream (which ends a response without a length, or cuts one short) may have come with the
  // bytes, and it raises no readiness event of its own.
  void Read();
  // Takes a read's outcome; true when a response needs more bytes.
  bool Consume(const boost::system::error_code& read_error, size_t read);
  // Ends the first round trip with the response the parser holds; true when more wait for theirs.
  bool Respond();
  // Ends every round trip in progress: the first one with `error`, the others as displaced by it.
  void Fail(const boost::system::error_code& error);

  HttpError ErrorKind(const boost::system::error_code& error) const;

  Stream stream_;
  const std::shared_ptr<DeadlineSweep> deadlines_;
  const std::string host_;
  const HttpClientOptions options_;
  static constexpr size_t kReadBytes = 16 << 10;  // the usual response in one read
  // The requests being sent: heads and small bodies, then the last one's large body head and
  // tail, if it has a large body.
  std::string request_;
  std::string_view large_body_head_;
  std::string body_tail_;
  boost::beast::flat_buffer buffer_;
  // The round trips in progress, in the order of their requests.
  std::deque<Pending> pending_;
  std::optional<ResponseParser> parser_;  // of the first one's response, once the batch is out
  bool batch_open_ = false;               // the requests wait for the executor's next turn
  bool writing_ = false;                  // the rest of the requests is being written
  bool read_at_once_ = false;             // an answer ended with more to come: read, then wait
  bool reusable_ = false;
  bool timed_out_ = false;
  bool aborted_ = false;
  bool watching_ = false;  // idle, watched by WatchIdle
};

template <typename Stream>
void HttpClientConnection<Stream>::WatchIdle(absl::AnyInvocable<void() &&> unusable) {
  if constexpr (requires { stream_.native_handle(); }) {
    watching_ = true;
    AsyncWaitUnusable(stream_, [self = this->shared_from_this(), unusable = std::move(unusable)](
                                   const boost::system::error_code& error) mutable {
      if (error || !self->watching_) return;  // stopped: taken for a request, or closed
      self->watching_ = false;
      std::move(unusable)();
    });
  }
}

template <typename Stream>
void HttpClientConnection<Stream>::StopWatching() {
  if constexpr (requires { stream_.native_handle(); }) {
    if (!std::exchange(watching_, false)) return;
    boost::system::error_code ignored;
    stream_.cancel(ignored);  // ends the wait: no other operation is pending on an idle stream
  }
}

template <typename Stream>
void HttpClientConnection<Stream>::RoundTrip(std::string_view target, std::string_view body_head,
                                             std::string_view body_tail, TimePoint deadline,
                                             RoundTripDone done) {
  namespace asio = boost::asio;
  reusable_ = false;
  pending_.push_back({std::move(done), deadline});
  if (pending_.size() == 1) {
    ArmDeadline(deadline);
    request_.clear();
    large_body_head_ = {};
    body_tail_.clear();
  } else {
    WatchPending();  // joins the batch
  }
  if (aborted_) {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this()] { self->Fail(asio::error::operation_aborted); });
    return;
  }
  char length[24];
  auto length_end =
      std::to_chars(length, length + sizeof(length), body_head.size() + body_tail.size()).ptr;
  request_.append("POST ").append(target).append(" HTTP/1.1\r\nHost: ").append(host_);
  request_.append("\r\nContent-Type: application/json\r\nContent-Length: ");
  request_.append(length, length_end).append("\r\n\r\n");
  // A small body joins the head: one buffer is one send, which costs the kernel less than a
  // sendmsg of several. A large one (large args) is written from where it is rather than copied.
  if (body_head.size() <= kMaxCopiedBody) {
    request_.append(body_head).append(body_tail);
  } else {
    large_body_head_ = body_head;
    body_tail_.assign(body_tail);
  }
  if (options_.max_pipeline > 1 && large_body_head_.empty()) {
    // The round trips started before the executor's next turn join this batch.
    if (!std::exchange(batch_open_, true)) {
      asio::post(stream_.get_executor(), [self = this->shared_from_this()] {
        if (self->batch_open_) self->Write();
      });
    }
    return;
  }
  Write();
}

template <typename Stream>
void HttpClientConnection<Stream>::Write() {
  namespace asio = boost::asio;
  batch_open_ = false;
  const std::array<asio::const_buffer, 3> buffers = {
      asio::buffer(request_), asio::buffer(large_body_head_.data(), large_body_head_.size()),
      asio::buffer(body_tail_)};
  // Most requests fit in the socket's buffer: written now, without a trip through the reactor
  // (the socket is non-blocking); the rest, if any, when the socket takes it.
  boost::system::error_code error;
  const size_t written = large_body_head_.empty() ? stream_.write_some(buffers[0], error)
                                                  : stream_.write_some(buffers, error);
  if (error == asio::error::would_block || error == asio::error::try_again) error = {};
  if (error) {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this(), error] { self->Fail(error); });
    return;
  }
  if (written == asio::buffer_size(buffers)) return StartReading();
  // The rest goes out as the peer takes it. The answers of requests this connection holds are
  // read meanwhile; a large body is the caller's, so its answer is read once the body is out
  // (the caller may free it when its round trip ends).
  const bool read_meanwhile = large_body_head_.empty();
  writing_ = true;
  boost::beast::buffers_suffix<std::array<asio::const_buffer, 3>> rest(buffers);
  rest.consume(written);
  asio::async_write(
      stream_, rest,
      [self = this->shared_from_this(), read_meanwhile](boost::system::error_code error, size_t) {
        self->writing_ = false;
        if (error) return self->Fail(error);
        if (!read_meanwhile) self->StartReading();
      });
  if (read_meanwhile) StartReading();
}

template <typename Stream>
void HttpClientConnection<Stream>::StartReading() {
  parser_.emplace(options_.max_response_bytes, options_.max_header_bytes);
  parser_->eager(true);
  Read();
}

template <typename Stream>
void HttpClientConnection<Stream>::Read() {
  auto on_read = [self = this->shared_from_this()](boost::system::error_code error, size_t read) {
    if (self->Consume(error, read)) self->Read();
  };
  if constexpr (requires { stream_.native_handle(); }) {
    // The socket is non-blocking (AsyncReadDrained made it so for the response's first bytes).
    // After an answer with more to come the socket is read at once too: the peer may have closed
    // it right behind that answer, and the end of the stream raised no event of its own.
    while (std::exchange(read_at_once_, false) || parser_->got_some() || buffer_.size() > 0) {
      boost::system::error_code error;
      const size_t read = stream_.read_some(buffer_.prepare(kReadBytes), error);
      if (error == boost::asio::error::would_block) break;
      if (!Consume(error, read)) return;
    }
    AsyncReadDrained(stream_, buffer_.prepare(kReadBytes), std::move(on_read));
  } else {
    stream_.async_read_some(buffer_.prepare(kReadBytes), std::move(on_read));
  }
}

template <typename Stream>
bool HttpClientConnection<Stream>::Consume(const boost::system::error_code& read_error,
                                           size_t read) {
  namespace http = boost::beast::http;
  if (pending_.empty()) return false;  // ended meanwhile (a failed write)
  buffer_.commit(read);
  boost::system::error_code error;
  if (read_error == boost::asio::error::eof) {
    // A response without a length ends with the connection; any other is cut short.
    if (!parser_->got_some()) {
      Fail(http::error::end_of_stream);
      return false;
    }
    parser_->put_eof(error);
    if (error) {
      Fail(error);
    } else {
      Respond();  // an answer the connection ends closes it: those behind it end there
    }
    return false;
  }
  if (read_error) {
    Fail(read_error);
    return false;
  }
  // Parses what the bytes hold, one response after the other; a header split across reads waits
  // for the rest of it. An interim answer (1xx: 100 Continue, 103 Early Hints) is passed over, as
  // the final one follows it (RFC 9110 section 15.2).
  for (;;) {
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const size_t used = parser_->put(buffer_.data(), error);
      buffer_.consume(used);
      if (error == http::error::need_more || (!error && used == 0)) break;
      if (error) {
        Fail(error);
        return false;
      }
    }
    if (!parser_->is_done()) return true;
    const int status = parser_->status();
    if (status >= 100 && status <= 199 && status != 101) {
      parser_.emplace(options_.max_response_bytes, options_.max_header_bytes);
      parser_->eager(true);
      continue;
    }
    if (!Respond()) return false;
  }
}

template <typename Stream>
bool HttpClientConnection<Stream>::Respond() {
  Pending first = std::move(pending_.front());
  pending_.pop_front();
  HttpResult result;
  result.response_started = true;
  result.status = parser_->status();
  result.function_error = parser_->function_error();
  result.body = std::move(parser_->body());
  const bool keep_alive = parser_->keep_alive();
  const bool more = !pending_.empty();
  if (more && !keep_alive) {
    // The peer closes the connection after this answer: the round trips behind it get none.
    parser_.reset();
    Fail(boost::beast::http::error::end_of_stream);
    std::move(first.done)(std::move(result));
    return false;
  }
  if (more) {
    WatchPending();
    parser_.emplace(options_.max_response_bytes, options_.max_header_bytes);
    parser_->eager(true);
    read_at_once_ = true;
  } else {
    const bool timed_out = DisarmDeadline();
    // Bytes past the last response mean the peer and this client disagree on framing, and a
    // peer that answered before it took every request may read the rest as requests: start
    // afresh.
    reusable_ = keep_alive && !timed_out && !aborted_ && !writing_ && buffer_.size() == 0;
    if (writing_) Close();  // ends the write
    // The last answers came in one read with this one: the next round trip's first read waits
    // for the socket, so that it never completes inside RoundTrip.
    read_at_once_ = false;
    buffer_.clear();
    parser_.reset();
    large_body_head_ = {};                                               // the caller's
    if (request_.capacity() > kReadBytes) std::string().swap(request_);  // large ones are not kept
  }
  std::move(first.done)(std::move(result));
  return more;
}

template <typename Stream>
void HttpClientConnection<Stream>::Fail(const boost::system::error_code& error) {
  const bool started = parser_ && parser_->got_some();
  DisarmDeadline();
  std::deque<Pending> pending = std::exchange(pending_, {});
  Close();  // ends a write in progress; those displaced are not answered on it any more
  buffer_.clear();
  parser_.reset();
  large_body_head_ = {};  // the caller's
  batch_open_ = false;
  read_at_once_ = false;
  reusable_ = false;
  if (request_.capacity() > kReadBytes) std::string().swap(request_);
  const TimePoint now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < pending.size(); ++i) {
    HttpResult result;
    result.detail = error;
    result.response_started = i == 0 && started;
    if (timed_out_) {
      // Every round trip whose deadline passed ends so; the others lost their connection to it.
      result.error = pending[i].deadline <= now ? HttpError::kTimeout : HttpError::kDisplaced;
    } else {
      result.error = i == 0 || aborted_ ? ErrorKind(error) : HttpError::kDisplaced;
    }
    // Not kept past the call: it may own the caller, which owns this connection.
    std::move(pending[i].done)(std::move(result));
  }
}

template <typename Stream>
void HttpClientConnection<Stream>::Connect(const boost::asio::ip::tcp::endpoint& endpoint,
                                           TimePoint deadline, ConnectDone done) {
  namespace asio = boost::asio;
  ArmDeadline(deadline);
  if (aborted_) {
    asio::post(stream_.get_executor(),
               [self = this->shared_from_this(), done = std::move(done)]() mutable {
                 self->DisarmDeadline();
                 std::move(done)(asio::error::operation_aborted);
               });
    return;
  }
  stream_.async_connect(endpoint, [self = this->shared_from_this(), done = std::move(done)](
                                      boost::system::error_code error) mutable {
    if (self->DisarmDeadline()) {
      error = asio::error::timed_out;
    } else if (self->aborted_) {
      error = asio::error::operation_aborted;
    } else if (!error) {
      // Head and body go out in one write, but small responses must not wait for delayed ACKs.
      self->stream_.set_option(asio::ip::tcp::no_delay(true), error);
      if (!error) self->stream_.non_blocking(true, error);  // see RoundTrip
    }
    std::move(done)(error);
  });
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
