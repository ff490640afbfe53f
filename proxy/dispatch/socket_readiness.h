// Reading and watching a TCP socket without system calls that find nothing, inside Asio's
// epoll reactor.
//
// AsyncReadDrained: Asio's async_read_some first tries to read and waits for readiness only when
// that finds the socket empty. For a request and its answer the next bytes are rarely there yet,
// so the try is a system call for nothing: up to one per request on each side of the proxy.
// haproxy takes a short read (fewer bytes than asked for) as a sign that the socket is drained,
// and reads it next only once it is reported readable. AsyncReadDrained does that: it reads as
// async_read_some does, and a short read tells the reactor the socket is drained (Asio itself
// only does that at the end of the stream). The reactor then waits for a readiness event before
// the next read of that socket. No event is missed: the reactor watches sockets edge-triggered,
// so bytes that arrive after a read, or that a read left behind, raise an event of their own, and
// an event that comes while no read waits makes the next one try at once.
//
// AsyncWaitUnusable: an idle keep-alive connection must not carry a request once its peer has
// closed it or sent bytes nobody asked for (a stale answer would be taken for the next request's).
// The wait looks (a peek) only when the reactor has seen the socket readable since it was last
// drained, and otherwise waits for such an event, so watching an idle connection costs no system
// call while nothing happens.
//
// This uses the epoll reactor's interface in boost/asio/detail (Boost 1.81, as Debian 12 has it):
// reactor_op and its status, the reactor's start_op, and a socket's descriptor data.
#pragma once

#include <sys/socket.h>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/recycling_allocator.hpp>
#include <cerrno>
#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace eofaas::proxy {

namespace socket_readiness_internal {

namespace detail = boost::asio::detail;

// One operation on a socket, done by `Action` (see Receive and PeekUnrequested) whenever the
// reactor finds the socket readable, and completed with `Handler(error_code, size_t)`. Its memory
// comes from Asio's per-thread recycling cache, as that of Asio's own operations does: the
// operation that ends frees it just before its handler starts the next one.
template <typename Action, typename Handler>
class SocketOp : public detail::reactor_op {
 public:
  static SocketOp* New(int socket, Action action, Handler handler) {
    void* memory = Allocator().allocate(1);
    return new (memory) SocketOp(socket, std::move(action), std::move(handler));
  }

 private:
  using Allocator = boost::asio::recycling_allocator<SocketOp>;

  SocketOp(int socket, Action action, Handler handler)
      : reactor_op(boost::system::error_code(), &Perform, &Complete),
        socket_(socket),
        action_(std::move(action)),
        handler_(std::move(handler)) {}

  static void Delete(SocketOp* op) {
    op->~SocketOp();
    Allocator().deallocate(op, 1);
  }

  static status Perform(reactor_op* base) {
    auto* op = static_cast<SocketOp*>(base);
    return op->action_(op->socket_, op->ec_, op->bytes_transferred_);
  }

  // Called by the loop with `owner` set, or with it null when the loop is destroyed first. A
  // cancelled or closed socket completes it with operation_aborted in ec_.
  static void Complete(void* owner, detail::scheduler_operation* base,
                       const boost::system::error_code&, size_t) {
    auto* op = static_cast<SocketOp*>(base);
    if (owner == nullptr) return Delete(op);
    Handler handler = std::move(op->handler_);
    const boost::system::error_code error = op->ec_;
    const size_t bytes = op->bytes_transferred_;
    Delete(op);
    std::move(handler)(error, bytes);
  }

  const int socket_;
  Action action_;
  Handler handler_;
};

// A read into a buffer; a short one marks the socket drained.
struct Receive {
  boost::asio::mutable_buffer buffer;

  detail::reactor_op::status operator()(int socket, boost::system::error_code& error,
                                        size_t& read) const {
    ssize_t n;
    do {
      n = ::recv(socket, buffer.data(), buffer.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return detail::reactor_op::not_done;
      error.assign(errno, boost::asio::error::get_system_category());
      return detail::reactor_op::done;
    }
    read = static_cast<size_t>(n);
    if (n == 0) error = boost::asio::error::eof;
    return read < buffer.size() ? detail::reactor_op::done_and_exhausted : detail::reactor_op::done;
  }
};

// A peek of one byte: done once the peer has closed the socket (or it failed), or sent a byte.
struct PeekUnrequested {
  detail::reactor_op::status operator()(int socket, boost::system::error_code&, size_t&) const {
    char byte;
    ssize_t n;
    do {
      n = ::recv(socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    const bool quiet = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    return quiet ? detail::reactor_op::not_done : detail::reactor_op::done;
  }
};

// Reaches a socket's implementation, which Asio keeps protected.
template <typename Socket>
struct SocketAccess : Socket {
  static auto& Implementation(Socket& socket) {
    return (socket.*&SocketAccess::impl_).get_implementation();
  }
};

// Queues `action` as a read operation of `socket`, tried at once when the reactor has seen the
// socket readable since it was last drained.
template <typename Executor, typename Action, typename Handler>
void StartReadOp(boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>& socket,
                 Action action, Handler handler) {
  static_assert(std::is_same_v<detail::reactor, detail::epoll_reactor>,
                "a short read marks a socket drained only in the epoll reactor");
  auto& implementation = SocketAccess<
      boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>>::Implementation(socket);
  auto& reactor = boost::asio::use_service<detail::reactor>(
      static_cast<boost::asio::execution_context&>(socket.get_executor().context()));
  if (!socket.non_blocking()) {
    boost::system::error_code ignored;  // a closed socket fails the operation below
    socket.non_blocking(true, ignored);
  }
  auto* op =
      SocketOp<Action, Handler>::New(socket.native_handle(), std::move(action), std::move(handler));
  reactor.start_op(detail::reactor::read_op, implementation.socket_, implementation.reactor_data_,
                   op, /*is_continuation=*/false, /*allow_speculative=*/true);
}

}  // namespace socket_readiness_internal

/// Reads some bytes of `socket` into `buffer` (not empty), as `socket.async_read_some` does, and
/// calls `handler(error_code, bytes_read)` on the socket's loop, never inside this call. The
/// socket is made non-blocking if it is not, and must be used by one thread only.
template <typename Executor, typename Handler>
void AsyncReadDrained(boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>& socket,
                      boost::asio::mutable_buffer buffer, Handler handler) {
  socket_readiness_internal::StartReadOp(socket, socket_readiness_internal::Receive{buffer},
                                         std::move(handler));
}

/// Waits until the peer of the idle `socket` closes it, resets it or sends it a byte, and then
/// calls `handler(error_code)` with no error, on the socket's loop, never inside this call. Nothing
/// is read. `socket.cancel()` or `socket.close()` ends the wait with operation_aborted. No other
/// read may wait on the socket meanwhile; the socket is made non-blocking if it is not, and must
/// be used by one thread only.
template <typename Executor, typename Handler>
void AsyncWaitUnusable(boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>& socket,
                       Handler handler) {
  socket_readiness_internal::StartReadOp(
      socket, socket_readiness_internal::PeekUnrequested{},
      [handler = std::move(handler)](const boost::system::error_code& error, size_t) mutable {
        std::move(handler)(error);
      });
}

}  // namespace eofaas::proxy
