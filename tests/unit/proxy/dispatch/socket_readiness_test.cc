#include "proxy/dispatch/socket_readiness.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "tests/support/eventually.h"

// Every recv of this test binary is counted: the reads that find nothing are what
// AsyncReadDrained saves. The call goes on to the kernel unchanged.
namespace {
std::atomic<int> recv_calls{0};
}  // namespace
extern "C" ssize_t recv(int socket, void* buffer, size_t length, int flags) {
  ++recv_calls;
  return recvfrom(socket, buffer, length, flags, nullptr, nullptr);
}

namespace eofaas::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Socket = asio::basic_stream_socket<tcp, asio::io_context::executor_type>;

struct Read {
  boost::system::error_code error;
  std::string bytes;
};

// A connected pair of loopback sockets: `ours` read with AsyncReadDrained or watched with
// AsyncWaitUnusable, `peer` written synchronously.
class SocketReadinessTest : public ::testing::Test {
 protected:
  SocketReadinessTest() {
    tcp::acceptor acceptor(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    ours_.connect(acceptor.local_endpoint());
    acceptor.accept(peer_);
  }

  // Starts a read of at most `size` bytes; its result lands in `read_`.
  void StartRead(size_t size) {
    read_.reset();
    buffer_.assign(size, '\0');
    AsyncReadDrained(ours_, asio::buffer(buffer_),
                     [this](boost::system::error_code error, size_t n) {
                       read_ = Read{error, buffer_.substr(0, n)};
                     });
  }

  // Runs the loop until the read has completed.
  Read Finish() {
    EXPECT_TRUE(tests::Eventually([&] {
      io_.poll();
      return read_.has_value();
    }));
    return read_.value_or(Read{});
  }

  // Starts watching `ours`; the wait's end lands in `watched_`.
  void StartWatch() {
    watched_.reset();
    AsyncWaitUnusable(ours_, [this](boost::system::error_code error) { watched_ = error; });
  }

  // Runs the loop until the watch has ended.
  boost::system::error_code FinishWatch() {
    EXPECT_TRUE(tests::Eventually([&] {
      io_.poll();
      return watched_.has_value();
    }));
    return watched_.value_or(asio::error::timed_out);
  }

  void Send(const std::string& bytes) { asio::write(peer_, asio::buffer(bytes)); }

  asio::io_context io_;
  // Keeps poll() from stopping the loop whenever no read is waiting.
  asio::executor_work_guard<asio::io_context::executor_type> work_{io_.get_executor()};
  Socket ours_{io_};
  tcp::socket peer_{io_};
  std::string buffer_;
  std::optional<Read> read_;
  std::optional<boost::system::error_code> watched_;
};

class DrainedReadTest : public SocketReadinessTest {};
class IdleWatchTest : public SocketReadinessTest {};

TEST_F(DrainedReadTest, ReadsWhatHasArrived) {
  Send("abc");
  StartRead(16);
  const Read read = Finish();
  EXPECT_FALSE(read.error);
  EXPECT_EQ(read.bytes, "abc");
}

TEST_F(DrainedReadTest, NeverCompletesInsideTheCallThatStartsIt) {
  Send("abc");
  StartRead(16);
  EXPECT_FALSE(read_.has_value());
  EXPECT_EQ(Finish().bytes, "abc");
}

TEST_F(DrainedReadTest, MakesTheSocketNonBlocking) {
  ASSERT_FALSE(ours_.non_blocking());
  StartRead(16);  // a blocking socket would hold the loop here
  EXPECT_TRUE(ours_.non_blocking());
  Send("abc");
  EXPECT_EQ(Finish().bytes, "abc");
}

TEST_F(DrainedReadTest, AfterAShortReadTheNextWaitsForBytesWithoutTryingFirst) {
  StartRead(16);
  io_.poll();
  Send("abc");  // read when their readiness is reported
  ASSERT_EQ(Finish().bytes, "abc");

  const int before = recv_calls;
  StartRead(16);
  for (int i = 0; i < 5; ++i) io_.poll();
  EXPECT_FALSE(read_.has_value());
  EXPECT_EQ(recv_calls, before) << "the socket was read while it was known to be empty";

  Send("def");
  EXPECT_EQ(Finish().bytes, "def");
  EXPECT_EQ(recv_calls, before + 1);
}

TEST_F(DrainedReadTest, BytesThatArriveBetweenReadsAreNotMissed) {
  Send("abc");
  StartRead(16);
  ASSERT_EQ(Finish().bytes, "abc");
  // The bytes arrive, and the loop takes their readiness event, while no read is waiting.
  Send("def");
  for (int i = 0; i < 5; ++i) io_.poll();
  StartRead(16);
  EXPECT_EQ(Finish().bytes, "def");
  // And while the loop has not yet taken their event.
  Send("ghi");
  StartRead(16);
  EXPECT_EQ(Finish().bytes, "ghi");
}

TEST_F(DrainedReadTest, AFullBufferIsFollowedAtOnceByTheNextRead) {
  Send(std::string(20, 'x'));
  StartRead(8);
  EXPECT_EQ(Finish().bytes, std::string(8, 'x'));
  // The socket may hold more: the next read tries at once and finds it.
  const int before = recv_calls;
  StartRead(8);
  EXPECT_EQ(Finish().bytes, std::string(8, 'x'));
  EXPECT_EQ(recv_calls, before + 1);
  StartRead(8);
  EXPECT_EQ(Finish().bytes, std::string(4, 'x'));
}

TEST_F(DrainedReadTest, EndOfStreamIsReported) {
  Send("abc");
  peer_.shutdown(tcp::socket::shutdown_send);
  StartRead(16);
  EXPECT_EQ(Finish().bytes, "abc");
  StartRead(16);
  const Read read = Finish();
  EXPECT_EQ(read.error, asio::error::eof);
  EXPECT_EQ(read.bytes, "");
}

TEST_F(DrainedReadTest, ClosingTheSocketAbortsAWaitingRead) {
  StartRead(16);
  io_.poll();
  ours_.close();
  EXPECT_EQ(Finish().error, asio::error::operation_aborted);
}

TEST_F(DrainedReadTest, AResetIsAnError) {
  StartRead(16);
  io_.poll();
  peer_.set_option(asio::socket_base::linger(true, 0));
  peer_.close();  // with a zero linger: a reset
  const Read read = Finish();
  EXPECT_EQ(read.error, asio::error::connection_reset);
}

TEST_F(IdleWatchTest, WatchingAQuietSocketReadsNothingAndEndsWhenAByteArrives) {
  StartRead(16);
  io_.poll();
  Send("answer");
  ASSERT_EQ(Finish().bytes, "answer");  // a short read: the socket is drained

  const int before = recv_calls;
  StartWatch();
  for (int i = 0; i < 5; ++i) io_.poll();
  EXPECT_FALSE(watched_.has_value());
  EXPECT_EQ(recv_calls, before) << "a quiet socket was looked at";

  Send("x");  // no request asked for it
  EXPECT_FALSE(FinishWatch());
  EXPECT_EQ(recv_calls, before + 1);
  StartRead(16);
  EXPECT_EQ(Finish().bytes, "x") << "the watch took the byte";
}

TEST_F(IdleWatchTest, EndsWhenThePeerCloses) {
  StartWatch();
  io_.poll();
  peer_.shutdown(tcp::socket::shutdown_send);
  EXPECT_FALSE(FinishWatch());
}

TEST_F(IdleWatchTest, EndsWhenThePeerResets) {
  StartWatch();
  io_.poll();
  peer_.set_option(asio::socket_base::linger(true, 0));
  peer_.close();
  EXPECT_FALSE(FinishWatch());
}

TEST_F(IdleWatchTest, SeesBytesThatCameBeforeItStarted) {
  Send("answer");
  StartRead(16);
  ASSERT_EQ(Finish().bytes, "answer");
  Send("stray");
  for (int i = 0; i < 5; ++i) io_.poll();  // their readiness event is taken meanwhile
  StartWatch();
  EXPECT_FALSE(FinishWatch());
}

TEST_F(IdleWatchTest, CancelAndCloseEndItAsAborted) {
  StartWatch();
  io_.poll();
  ours_.cancel();
  EXPECT_EQ(FinishWatch(), asio::error::operation_aborted);
  // The socket reads as before once the watch is over.
  StartRead(16);
  Send("next");
  EXPECT_EQ(Finish().bytes, "next");

  StartWatch();
  io_.poll();
  ours_.close();
  EXPECT_EQ(FinishWatch(), asio::error::operation_aborted);
}

TEST(DrainedReadLifetimeTest, AReadStillWaitingWhenTheLoopIsDestroyedReleasesItsHandler) {
  auto held = std::make_shared<int>(0);
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    Socket ours(io);
    ours.connect(acceptor.local_endpoint());
    tcp::socket peer = acceptor.accept();
    std::string buffer(16, '\0');
    AsyncReadDrained(ours, asio::buffer(buffer), [held](boost::system::error_code, size_t) {
      ADD_FAILURE() << "a destroyed loop called a handler";
    });
    io.poll();
    EXPECT_EQ(held.use_count(), 2);
  }
  EXPECT_EQ(held.use_count(), 1);
}

}  // namespace
}  // namespace eofaas::proxy
