#include "proxy/ingress/http_ingress.h"

#include <poll.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <optional>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "proxy/dispatch/call_group.h"
#include "proxy/dispatch/socket_readiness.h"
#include "proxy/ingress/http_translation.h"
#include "proxy/ingress/invoke_call.h"
#include "proxy/ingress/request_parser.h"

namespace eofaas::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
// A connection's socket and timer run their handlers on its loop, without type erasure.
using Socket = asio::basic_stream_socket<tcp, LoopExecutor>;
using Timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, LoopExecutor>;

constexpr uint32_t kMaxHeaderBytes = 16 << 10;
constexpr size_t kReadBytes = 16 << 10;
constexpr std::chrono::seconds kLingerTimeout(2);
// How often a connection's timer wakes: to close it past its deadline, and, while a call runs, to
// see whether the client is still there.
constexpr std::chrono::seconds kCheckInterval(1);

// The answer to a request that could not be parsed.
HttpAnswer ParseFailureAnswer(const RequestParser& parser) {
  HttpAnswer answer = ErrorAnswer(absl::InvalidArgumentError(
      absl::StrCat("request: not valid HTTP/1.1 (", parser.error(), ")")));
  switch (parser.state()) {
    case RequestParser::State::kHeadTooLarge:
      answer.status = 431;
      break;
    case RequestParser::State::kBodyTooLarge:
      answer.status = 413;
      break;
    case RequestParser::State::kNotImplemented:
      answer.status = 501;
      break;
    default:
      break;
  }
  return answer;
}

}  // namespace

// One keep-alive connection: read a request, run it, write the answer, again; then a lingering
// close. Owned by the ingress's table and by its pending handlers (std::shared_ptr). Everything
// runs on the socket's loop; a call's outcome is answered in the loop's burst (PostInBurst),
// together with the other answers that came in meanwhile.
//
// Timeouts: a request must arrive whole, and an answer be taken, within the idle timeout. Rather
// than re-arm a timer for every request, the connection moves `deadline_` and one timer per
// connection wakes every kCheckInterval (or at the deadline, when sooner) and closes the socket
// once the current deadline has passed (deadlines only move later, but for the lingering close,
// which re-arms).
//
// A client that goes away while its call runs (closes or resets the connection, as a client that
// timed out does) cancels the call at the timer's next wake, as nginx stops a request whose client
// closed: its replica slot is not held for an answer nobody reads. Nothing is read meanwhile;
// the kernel tells whether the client's stream has ended, behind any bytes it sent (ClientGone).
// The same check closes a connection whose client left while a request was awaited (its end of
// stream may raise no readiness event: socket_readiness.h), rather than at the idle timeout.
class HttpIngress::Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(HttpIngress& ingress, Socket socket)
      : ingress_(ingress),
        socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        idle_timeout_(absl::ToChronoNanoseconds(ingress.options_.idle_timeout)) {}

  void Start() {
    asio::dispatch(socket_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ignored;
      self->socket_.non_blocking(true, ignored);  // answers are written at once when they fit
      self->armed_until_ = SteadyClock::now() +
                           std::min<std::chrono::nanoseconds>(self->idle_timeout_, kCheckInterval);
      self->Wait();
      self->NextRequest();
    });
  }

  const LoopExecutor& executor() { return socket_.get_executor(); }

  // On the loop, at shutdown: a connection waiting for a request closes now.
  void CloseIfIdle() {
    if (idle_) CloseSocket();
  }

  // On the loop, when the shutdown grace is over: the call in progress is cancelled.
  void Abort() {
    group_->Cancel();
    CloseSocket();
  }

 private:
  void NextRequest() {
    parser_.Start(request_);
    idle_ = true;
    deadline_ = SteadyClock::now() + idle_timeout_;
    ParseOrRead();
  }

  // Parses what was read; reads more while the request is not whole.
  void ParseOrRead() {
    if (buffer_.size() > 0) {
      buffer_.consume(parser_.Parse(
          std::string_view(static_cast<const char*>(buffer_.data().data()), buffer_.size())));
      if (parser_.state() == RequestParser::State::kDone) return OnRequest();
      if (parser_.state() != RequestParser::State::kNeedMore) return ParseFailed();
      if (request_.expects_continue) {
        request_.expects_continue = false;
        // A head refused on its own is answered now, without its body: the client need not send
        // it, and the connection closes after the answer (RFC 9110 section 10.1.1).
        if (std::optional<HttpAnswer> answer =
                RejectRequestLine(request_.method, request_.target, request_.content_type)) {
          idle_ = false;
          keep_alive_ = false;
          return Respond(*std::move(answer));
        }
        // The client waits for this before its body. A write that does not go through only
        // delays the body: clients send it after a while anyway.
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        boost::system::error_code ignored;
        socket_.write_some(asio::buffer(kContinue), ignored);
      }
    }
    AsyncReadDrained(socket_, buffer_.prepare(kReadBytes),
                     [self = shared_from_this()](boost::system::error_code error, size_t n) {
                       self->OnRead(error, n);
                     });
  }

  void OnRead(const boost::system::error_code& error, size_t n) {
    if (error) return Linger();  // closed, reset, timed out or shut down: no answer
    buffer_.commit(n);
    ParseOrRead();
  }

  void ParseFailed() {
    idle_ = false;
    keep_alive_ = false;
    Respond(ParseFailureAnswer(parser_));
  }

  void OnRequest() {
    idle_ = false;
    deadline_ = kCalling;  // the call has its own deadline
    keep_alive_ = request_.keep_alive;
    if (std::optional<HttpAnswer> answer =
            RejectRequestLine(request_.method, request_.target, request_.content_type)) {
      return Respond(*std::move(answer));
    }
    if (absl::Status parsed =
            ParseInvokeBody(*InvokeRoute(request_.target), request_.body, invoke_);
        !parsed.ok()) {
      return Respond(ErrorAnswer(parsed));
    }
    StartInvoke(ingress_.services_, invoke_.request, invoke_.args_json, std::nullopt, group_,
                [self = shared_from_this()](InvokeOutcome outcome) mutable {
                  Connection& connection = *self;
                  connection.outcome_ = std::move(outcome);
                  PostInBurst(connection.executor(), [self = std::move(self)] {
                    InvokeOutcome outcome = *std::exchange(self->outcome_, std::nullopt);
                    self->Respond(InvokeAnswer(outcome));
                  });
                });
  }

  void Respond(HttpAnswer answer) {
    keep_alive_ = keep_alive_ && !ingress_.Draining();
    answer_.clear();
    AppendResponseHead(answer, request_.version, keep_alive_, answer_);
    // The answer to HEAD has the head that of GET would have, and no body (RFC 9110 9.3.2).
    if (request_.method == "HEAD") answer.body.clear();
    // A small body joins the head: one buffer is one send, which costs the kernel less than a
    // sendmsg of two. A large one is written from where it is rather than copied.
    if (answer.body.size() <= kReadBytes) {
      answer_.append(answer.body);
    } else {
      large_body_ = std::move(answer.body);
    }
    const std::array<asio::const_buffer, 2> buffers = {asio::buffer(answer_),
                                                       asio::buffer(large_body_)};
    // Most answers fit in the socket's buffer: written now, without a trip through the reactor.
    boost::system::error_code error;
    const size_t written = large_body_.empty() ? socket_.write_some(buffers[0], error)
                                               : socket_.write_some(buffers, error);
    if (!error && written == answer_.size() + large_body_.size()) return Written();
    if (error && error != asio::error::would_block && error != asio::error::try_again) {
      return Linger();
    }
    deadline_ = SteadyClock::now() + idle_timeout_;
    beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(buffers);
    rest.consume(written);
    asio::async_write(socket_, rest,
                      [self = shared_from_this()](boost::system::error_code error, size_t) {
                        if (error) return self->Linger();
                        self->Written();
                      });
  }

  void Written() {
    // Large buffers are not kept from one answer to the next.
    if (answer_.capacity() > kReadBytes) std::string().swap(answer_);
    std::string().swap(large_body_);
    if (!keep_alive_ || ingress_.Draining()) return Linger();
    NextRequest();
  }

  // A lingering close: the client may still be sending (a body answered 413 before it was read).
  // Closing at once would reset the connection and lose the answer, so the rest is read and
  // dropped until the client closes, for a short while at most.
  void Linger() {
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    deadline_ = SteadyClock::now() + kLingerTimeout;
    if (deadline_ < armed_until_) {
      armed_until_ = deadline_;
      Wait();  // replaces the wait for a later deadline
    }
    Discard();
  }

  void Discard() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(kReadBytes),
                            [self = shared_from_this()](boost::system::error_code error, size_t) {
                              if (error) return self->End();
                              self->Discard();
                            });
  }

  void End() {
    ended_ = true;
    CloseSocket();
    timer_.cancel();
    ingress_.Forget(this);
  }

  void CloseSocket() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

  // Waits until armed_until_, then closes the socket when the deadline has passed, or cancels
  // the call of a client that left; then waits for the next check.
  void Wait() {
    timer_.expires_at(armed_until_);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code error) {
      if (error || self->ended_) return;  // cancelled: re-armed, or the connection ended
      const auto now = SteadyClock::now();
      if (now >= self->deadline_) return self->CloseSocket();  // the pending operation ends
      if (self->deadline_ == kCalling && self->ClientGone()) {
        self->keep_alive_ = false;  // nor is a request it sent after this one run
        self->group_->Cancel();
      }
      // A client that closed while its next request was awaited: its end of stream may have
      // come with the last bytes read, and then it raised no readiness event of its own.
      if (self->idle_ && self->ClientGone()) return self->CloseSocket();
      self->armed_until_ = std::min(self->deadline_, now + kCheckInterval);
      self->Wait();
    });
  }

  // Whether the client closed or reset the connection, even behind bytes not read yet (a stray
  // CRLF after a body, or the next request of a client that pipelines): the kernel reports the
  // end of its stream as POLLRDHUP, as nginx learns it from EPOLLRDHUP.
  bool ClientGone() {
    pollfd polled{.fd = socket_.native_handle(), .events = POLLRDHUP, .revents = 0};
    if (::poll(&polled, 1, 0) < 0) return false;  // interrupted: looked at again next time
    return (polled.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

  HttpIngress& ingress_;
  Socket socket_;
  Timer timer_;
  const std::chrono::nanoseconds idle_timeout_;
  // When the connection closes unless it made progress (kCalling while a call runs: it has a
  // deadline of its own), and when the timer wakes next.
  static constexpr SteadyClock::time_point kCalling = SteadyClock::time_point::max();
  SteadyClock::time_point deadline_ = kCalling;
  SteadyClock::time_point armed_until_;
  beast::flat_buffer buffer_;
  HttpRequest request_;
  RequestParser parser_{kMaxHeaderBytes, ingress_.options_.max_body_bytes};
  InvokeBody invoke_;
  // The call's outcome, until the loop's burst answers it. Kept here rather than in the deferred
  // step, which then holds only `self` and fits in the step's own storage (no allocation).
  std::optional<InvokeOutcome> outcome_;
  // Cancelled at shutdown, or when the client left: either way no call of the connection follows,
  // so one serves them all.
  const std::shared_ptr<CallGroup> group_ = std::make_shared<CallGroup>();
  std::string answer_;      // the answer being written: head and small body
  std::string large_body_;  // or its body, when large
  // Waiting for a request (rather than working on one).
  bool idle_ = true;
  bool keep_alive_ = false;
  bool ended_ = false;
};

HttpIngress::HttpIngress(EventLoops& loops, const IngressServices& services,
                         HttpIngressOptions options)
    : loops_(loops), services_(services), options_(std::move(options)), acceptor_(loops.at(0)) {}

absl::StatusOr<std::unique_ptr<HttpIngress>> HttpIngress::Start(EventLoops& loops,
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
  auto ingress = std::unique_ptr<HttpIngress>(new HttpIngress(loops, services, std::move(options)));
  auto& acceptor = ingress->acceptor_;
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
    auto [error, socket] = co_await acceptor_.async_accept(loops_.at(loops_.Next()),
                                                           asio::as_tuple(asio::use_awaitable));
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
    auto connection = std::make_shared<Connection>(*this, std::move(socket));
    {
      absl::MutexLock lock(&mu_);
      if (Draining()) continue;  // the socket closes with the connection
      connections_.emplace(connection.get(), connection);
    }
    connection->Start();
  }
  absl::MutexLock lock(&mu_);
  accepting_ = false;
}

template <typename Action>
void HttpIngress::ForEachConnection(Action action) {
  absl::MutexLock lock(&mu_);
  for (const auto& [_, connection] : connections_) {
    asio::post(connection->executor(), [connection, action] { action(*connection); });
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
    draining_ = true;  // under the lock, so that Accept registers nothing after it
  }
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  });
  // Idle connections close now; busy ones after their answer.
  ForEachConnection([](Connection& connection) { connection.CloseIfIdle(); });
  auto all_gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !accepting_ && connections_.empty();
  };
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(absl::Condition(&all_gone), grace);
  }
  ForEachConnection([](Connection& connection) { connection.Abort(); });
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&all_gone));
}

}  // namespace eofaas::proxy
