// Reading a TCP socket without reads that find nothing. Asio's async_read_some first tries to
// read and waits for readiness only when that finds the socket empty. For a request and its
// answer the next bytes are rarely there yet, so the try is a system call for nothing: up to one
// per request on each side of the proxy. haproxy takes a short read (fewer bytes than asked for)
// as a sign that the socket is drained, and reads it next only once it is reported readable.
//
// AsyncReadDrained does that inside Asio's reactor. It reads as async_read_some does, and a short
// read tells the reactor the socket is drained (Asio itself only does that at the end of the
// stream). The reactor then waits for a readiness event before the next read of that socket. No
// event is missed: the reactor watches sockets edge-triggered, so bytes that arrive after a read,
// or that a read left behind, raise an event of their own, and an event that comes while no read
// waits makes the next one try at once.
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

namespace drained_read_internal {

// One read of a socket into a buffer, completed with `Handler(error_code, size_t)`. Its memory
// comes from Asio's per-thread recycling cache, as that of Asio's own operations does: the read
// that ends frees it just before its handler starts the next one.
template <typename Handler>
class ReadOp : public boost::asio::detail::reactor_op {
 public:
  static ReadOp* New(int socket, boost::asio::mutable_buffer buffer, Handler handler) {
    void* memory = Allocator().allocate(1);
    return new (memory) ReadOp(socket, buffer, std::move(handler));
  }

 private:
  using Allocator = boost::asio::recycling_allocator<ReadOp>;

  ReadOp(int socket, boost::asio::mutable_buffer buffer, Handler handler)
      : reactor_op(boost::system::error_code(), &Perform, &Complete),
        socket_(socket),
        buffer_(buffer),
        handler_(std::move(handler)) {}

  static void Delete(ReadOp* op) {
    op->~ReadOp();
    Allocator().deallocate(op, 1);
  }

  static status Perform(reactor_op* base) {
    auto* op = static_cast<ReadOp*>(base);
    ssize_t read;
    do {
      read = ::recv(op->socket_, op->buffer_.data(), op->buffer_.size(), 0);
    } while (read < 0 && errno == EINTR);
    if (read < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
      op->ec_.assign(errno, boost::asio::error::get_system_category());
      return done;
    }
    op->bytes_transferred_ = static_cast<size_t>(read);
    if (read == 0) op->ec_ = boost::asio::error::eof;
    return op->bytes_transferred_ < op->buffer_.size() ? done_and_exhausted : done;
  }

  // Called by the loop with `owner` set, or with it null when the loop is destroyed first.
  static void Complete(void* owner, boost::asio::detail::scheduler_operation* base,
                       const boost::system::error_code&, size_t) {
    auto* op = static_cast<ReadOp*>(base);
    if (owner == nullptr) return Delete(op);
    Handler handler = std::move(op->handler_);
    const boost::system::error_code error = op->ec_;
    const size_t read = op->bytes_transferred_;
    Delete(op);
    std::move(handler)(error, read);
  }

  const int socket_;
  const boost::asio::mutable_buffer buffer_;
  Handler handler_;
};

// Reaches a socket's implementation, which Asio keeps protected.
template <typename Socket>
struct SocketAccess : Socket {
  static auto& Implementation(Socket& socket) {
    return (socket.*&SocketAccess::impl_).get_implementation();
  }
};

}  // namespace drained_read_internal

/// Reads some bytes of `socket` into `buffer` (not empty), as `socket.async_read_some` does, and
/// calls `handler(error_code, bytes_read)` on the socket's loop, never inside this call. The
/// socket is made non-blocking if it is not, and must be used by one thread only.
template <typename Executor, typename Handler>
void AsyncReadDrained(boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>& socket,
                      boost::asio::mutable_buffer buffer, Handler handler) {
  namespace detail = boost::asio::detail;
  static_assert(std::is_same_v<detail::reactor, detail::epoll_reactor>,
                "a short read marks a socket drained only in the epoll reactor");
  auto& implementation = drained_read_internal::SocketAccess<
      boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>>::Implementation(socket);
  auto& reactor = boost::asio::use_service<detail::reactor>(
      static_cast<boost::asio::execution_context&>(socket.get_executor().context()));
  if (!socket.non_blocking()) {
    boost::system::error_code ignored;  // a closed socket fails the read below
    socket.non_blocking(true, ignored);
  }
  auto* op = drained_read_internal::ReadOp<Handler>::New(socket.native_handle(), buffer,
                                                         std::move(handler));
  reactor.start_op(detail::reactor::read_op, implementation.socket_, implementation.reactor_data_,
                   op, /*is_continuation=*/false, /*allow_speculative=*/true);
}

}  // namespace eofaas::proxy
