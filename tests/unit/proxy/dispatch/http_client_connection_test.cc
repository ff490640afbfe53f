#include "proxy/dispatch/http_client_connection.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <functional>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace eofaas::proxy {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using namespace std::chrono_literals;
using Connection = HttpClientConnection<beast::test::stream>;

class HttpClientConnectionTest : public ::testing::Test {
 protected:
  HttpClientConnectionTest() {
    beast::test::stream client(io_);
    remote_.emplace(beast::test::connect(client));
    connection_ = std::make_shared<Connection>(std::move(client), "replica:8080", options_,
                                               std::make_shared<DeadlineSweep>(io_.get_executor()));
  }

  HttpResult RoundTrip(std::chrono::milliseconds timeout = 2000ms,
                       std::string_view body_head = R"({"id":"1")") {
    HttpResult result;
    bool done = false;
    connection_->RoundTrip("/invoke", body_head, R"(,"attempt":1})",
                           std::chrono::steady_clock::now() + timeout, [&](HttpResult r) {
                             result = std::move(r);
                             done = true;
                           });
    EXPECT_FALSE(done) << "completed inside RoundTrip";
    io_.restart();
    io_.run();
    EXPECT_TRUE(done);
    return result;
  }

  // What the remote end received, consumed.
  std::string Received() {
    std::string text(remote_->str());
    remote_->clear();
    return text;
  }

  asio::io_context io_;
  HttpClientOptions options_{.max_response_bytes = 1024, .max_header_bytes = 1024};
  std::optional<beast::test::stream> remote_;
  std::shared_ptr<Connection> connection_;
};

TEST_F(HttpClientConnectionTest, SendsOnePostAndReadsTheResult) {
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.error, HttpError::kNone);
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "hello");
  EXPECT_EQ(result.function_error, FunctionErrorHeader::kNone);
  EXPECT_TRUE(connection_->reusable());
  EXPECT_EQ(Received(),
            "POST /invoke HTTP/1.1\r\nHost: replica:8080\r\nContent-Type: application/json\r\n"
            "Content-Length: 22\r\n\r\n{\"id\":\"1\",\"attempt\":1}");
}

TEST_F(HttpClientConnectionTest, ALargeBodyGoesOutWholeInPieces) {
  // Larger than the body the connection copies next to the head, through a stream that takes
  // 1000 bytes per write.
  const std::string head = absl::StrCat(R"({"id":"1","args":")", std::string(40'000, 'x'), "\"");
  connection_->stream().write_size(1000);
  for (int i = 0; i < 2; ++i) {
    connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    HttpResult result = RoundTrip(2000ms, head);
    EXPECT_EQ(result.error, HttpError::kNone);
    EXPECT_EQ(result.body, "ok");
    const std::string body = head + R"(,"attempt":1})";
    EXPECT_EQ(Received(), absl::StrCat("POST /invoke HTTP/1.1\r\nHost: replica:8080\r\n"
                                       "Content-Type: application/json\r\nContent-Length: ",
                                       body.size(), "\r\n\r\n", body));
  }
}

TEST_F(HttpClientConnectionTest, ASmallBodyAfterALargeOneGoesOutAlone) {
  const std::string head = absl::StrCat(R"({"id":"1","args":")", std::string(40'000, 'x'), "\"");
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(RoundTrip(2000ms, head).body, "ok");
  Received();
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_EQ(RoundTrip().body, "ok");
  EXPECT_EQ(Received(),
            "POST /invoke HTTP/1.1\r\nHost: replica:8080\r\nContent-Type: application/json\r\n"
            "Content-Length: 22\r\n\r\n{\"id\":\"1\",\"attempt\":1}");
}

TEST_F(HttpClientConnectionTest, KeepAliveCarriesTheNextRequest) {
  for (int i = 0; i < 3; ++i) {
    connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    HttpResult result = RoundTrip();
    EXPECT_EQ(result.body, "ok");
    EXPECT_TRUE(connection_->reusable());
  }
  const std::string received = Received();
  size_t requests = 0;
  for (size_t at = 0; (at = received.find("POST /invoke", at)) != std::string::npos; ++at) {
    ++requests;
  }
  EXPECT_EQ(requests, 3u);
}

TEST_F(HttpClientConnectionTest, InterimAnswersArePassedOver) {
  connection_->stream().append(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.error, HttpError::kNone);
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "final");
  EXPECT_TRUE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, FunctionErrorHeader) {
  connection_->stream().append(
      "HTTP/1.1 200 OK\r\nx-eofaas-function-error: handled\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(RoundTrip().function_error, FunctionErrorHeader::kHandled);
  connection_->stream().append(
      "HTTP/1.1 200 OK\r\nX-Eofaas-Function-Error: unhandled\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(RoundTrip().function_error, FunctionErrorHeader::kUnhandled);
}

TEST_F(HttpClientConnectionTest, ChunkedBody) {
  connection_->stream().append(
      "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\ndrai\r\n3\r\nnin\r\n1\r\ng\r\n0\r\n\r\n");
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.status, 503);
  EXPECT_EQ(result.body, "draining");
  EXPECT_TRUE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, BodyOverTheLimit) {
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n");
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.error, HttpError::kBodyTooLarge);
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, ChunkedBodyOverTheLimit) {
  std::string chunk(600, 'x');
  connection_->stream().append("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n" +
                               chunk + "\r\n258\r\n" + chunk + "\r\n0\r\n\r\n");
  EXPECT_EQ(RoundTrip().error, HttpError::kBodyTooLarge);
}

TEST_F(HttpClientConnectionTest, HeaderOverTheLimitIsAProtocolError) {
  connection_->stream().append("HTTP/1.1 200 OK\r\nX-Big: " + std::string(2000, 'a') +
                               "\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(RoundTrip().error, HttpError::kProtocol);
}

TEST_F(HttpClientConnectionTest, GarbageIsAProtocolError) {
  connection_->stream().append("SSH-2.0-OpenSSH_9.2\r\n\r\n");
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.error, HttpError::kProtocol);
  EXPECT_TRUE(result.response_started);
}

TEST_F(HttpClientConnectionTest, SilentReplicaTimesOut) {
  const auto start = std::chrono::steady_clock::now();
  HttpResult result = RoundTrip(50ms);
  EXPECT_EQ(result.error, HttpError::kTimeout);
  EXPECT_FALSE(result.response_started);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, SlowBodyTimesOut) {
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  HttpResult result = RoundTrip(50ms);
  EXPECT_EQ(result.error, HttpError::kTimeout);
  EXPECT_TRUE(result.response_started);
}

TEST_F(HttpClientConnectionTest, PeerClosingBeforeAnswering) {
  remote_->close();
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.error, HttpError::kClosed);
  EXPECT_FALSE(result.response_started);  // safe to send again on a fresh connection
}

TEST_F(HttpClientConnectionTest, PeerClosingMidResponse) {
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  connection_->stream().close_remote();
  HttpResult result = RoundTrip();
  EXPECT_EQ(result.error, HttpError::kClosed);
  EXPECT_TRUE(result.response_started);
}

TEST_F(HttpClientConnectionTest, ConnectionCloseIsNotReused) {
  connection_->stream().append(
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(RoundTrip().body, "ok");
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, Http10WithoutKeepAliveIsNotReused) {
  connection_->stream().append("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(RoundTrip().body, "ok");
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, UnrequestedBytesMakeItUnusable) {
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200");
  EXPECT_EQ(RoundTrip().body, "ok");
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(HttpClientConnectionTest, AbortEndsTheRoundTrip) {
  asio::steady_timer timer(io_, 20ms);
  timer.async_wait([&](auto) { connection_->Abort(); });
  HttpResult result = RoundTrip(5000ms);
  EXPECT_EQ(result.error, HttpError::kAborted);
  // Once aborted, it stays unusable.
  EXPECT_EQ(RoundTrip().error, HttpError::kAborted);
}

// Pipelining: round trips started before the executor's next turn share one write, and their
// answers come back in order.
class PipelinedConnectionTest : public HttpClientConnectionTest {
 protected:
  PipelinedConnectionTest() {
    options_.max_pipeline = 3;
    beast::test::stream client(io_);
    remote_.emplace(beast::test::connect(client));
    connection_ = std::make_shared<Connection>(std::move(client), "replica:8080", options_,
                                               std::make_shared<DeadlineSweep>(io_.get_executor()));
  }

  // Starts a round trip with the body {"id":"<id>"}, its result kept in results_[id] (the body's
  // head in heads_[id], which must outlive it).
  void Start(int id, std::chrono::milliseconds timeout = 2000ms) {
    const std::string& head = heads_[id] = absl::StrCat(R"({"id":")", id, R"(")");
    connection_->RoundTrip("/invoke", head, "}", std::chrono::steady_clock::now() + timeout,
                           [this, id](HttpResult result) { results_[id] = std::move(result); });
  }

  std::map<int, std::string> heads_;
  std::map<int, HttpResult> results_;
};

TEST_F(PipelinedConnectionTest, RequestsOfOneTurnGoOutTogetherAndAreAnsweredInOrder) {
  Start(0);
  EXPECT_TRUE(connection_->joinable());
  Start(1);
  Start(2);
  EXPECT_FALSE(connection_->joinable()) << "full at max_pipeline";
  EXPECT_EQ(remote_->str(), "") << "written at the executor's next turn";
  connection_->stream().append(
      "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nzeroHTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
      "\r\noneHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo");
  io_.run();
  ASSERT_EQ(results_.size(), 3u);
  EXPECT_EQ(results_[0].body, "zero");
  EXPECT_EQ(results_[1].body, "one");
  EXPECT_EQ(results_[2].body, "two");
  EXPECT_TRUE(connection_->reusable());
  EXPECT_FALSE(connection_->busy());
  const std::string received = Received();
  for (int id = 0; id < 3; ++id) {
    EXPECT_TRUE(absl::StrContains(
        received, absl::StrCat(R"(Content-Length: 10)", "\r\n\r\n", R"({"id":")", id, R"("})")))
        << received;
  }
  EXPECT_LT(received.find(R"({"id":"0"})"), received.find(R"({"id":"1"})"));
  EXPECT_LT(received.find(R"({"id":"1"})"), received.find(R"({"id":"2"})"));
}

TEST_F(PipelinedConnectionTest, AnswersSplitAcrossReadsFollowEachOther) {
  Start(0);
  Start(1);
  connection_->stream().append("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nzeroHTTP/1.1 2");
  io_.run_for(50ms);
  EXPECT_EQ(results_[0].body, "zero");
  EXPECT_FALSE(results_.contains(1));
  asio::write(*remote_, asio::buffer(std::string_view("00 OK\r\nContent-Length: 3\r\n\r\none")));
  io_.restart();
  io_.run();
  EXPECT_EQ(results_[1].body, "one");
  EXPECT_TRUE(connection_->reusable());
}

TEST_F(PipelinedConnectionTest, AnAnswerThatClosesLeavesThoseBehindItUnanswered) {
  Start(0);
  Start(1);
  Start(2);
  connection_->stream().append(
      "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\nzero");
  connection_->stream().close_remote();
  io_.run();
  EXPECT_EQ(results_[0].body, "zero");
  EXPECT_EQ(results_[1].error, HttpError::kClosed);
  EXPECT_FALSE(results_[1].response_started);
  EXPECT_EQ(results_[2].error, HttpError::kDisplaced);
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(PipelinedConnectionTest, ADeadlineThatPassesDisplacesTheOthers) {
  Start(0, 5000ms);
  Start(1, 50ms);  // waits behind the first, whose answer does not come
  io_.run();
  EXPECT_EQ(results_[1].error, HttpError::kTimeout);
  EXPECT_EQ(results_[0].error, HttpError::kDisplaced);
  EXPECT_FALSE(connection_->reusable());
}

TEST_F(PipelinedConnectionTest, AbortEndsEveryRoundTrip) {
  Start(0);
  Start(1);
  asio::steady_timer timer(io_, 20ms);
  timer.async_wait([&](auto) { connection_->Abort(); });
  io_.run();
  EXPECT_EQ(results_[0].error, HttpError::kAborted);
  EXPECT_EQ(results_[1].error, HttpError::kAborted);
}

TEST_F(PipelinedConnectionTest, AnInvalidAnswerDisplacesThoseBehindIt) {
  Start(0);
  Start(1);
  connection_->stream().append("NOT HTTP\r\n\r\n");
  io_.run();
  EXPECT_EQ(results_[0].error, HttpError::kProtocol);
  EXPECT_EQ(results_[1].error, HttpError::kDisplaced);
}

// Over a real socket, whose reads wait for readiness events: a replica that answers and closes at
// once sends the last bytes and the end of the stream together, which raises one event only.
class HttpClientConnectionSocketTest : public ::testing::Test {
 protected:
  // The result of one round trip to a replica that reads the request, then writes `answer` and
  // closes its socket right away.
  HttpResult AnswerAndClose(const std::string& answer) {
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    std::thread replica([&] {
      asio::ip::tcp::socket peer = acceptor.accept();
      std::string request;
      char bytes[4096];
      while (!absl::EndsWith(request, R"("attempt":1})")) {
        request.append(bytes, peer.read_some(asio::buffer(bytes)));
      }
      asio::write(peer, asio::buffer(answer));
      peer.close();
    });
    asio::ip::tcp::socket socket(io_);
    socket.connect(acceptor.local_endpoint());
    auto connection = std::make_shared<HttpClientConnection<asio::ip::tcp::socket>>(
        std::move(socket), "replica", options_,
        std::make_shared<DeadlineSweep>(io_.get_executor()));
    HttpResult result;
    connection->RoundTrip("/invoke", R"({"id":"1")", R"(,"attempt":1})",
                          std::chrono::steady_clock::now() + 5s,
                          [&](HttpResult r) { result = std::move(r); });
    io_.run();
    replica.join();
    return result;
  }

  // `count` requests pipelined on one connection (each body {"id":"<i>","pad":"x...",
  // "attempt":1}, `pad` bytes of padding) to a replica that runs `serve` on its socket; their
  // results, in order. With `small_buffers` both sockets have small buffers, as over a slow
  // network: a side that writes more than they hold waits for the other side to read.
  std::vector<HttpResult> Pipelined(int count, size_t pad,
                                    const std::function<void(asio::ip::tcp::socket&)>& serve,
                                    bool small_buffers = false) {
    const asio::socket_base::send_buffer_size small_send(8 << 10);
    const asio::socket_base::receive_buffer_size small_receive(8 << 10);
    asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    if (small_buffers) {
      acceptor.set_option(small_send);  // the accepted socket takes them on
      acceptor.set_option(small_receive);
    }
    std::thread replica([&] {
      asio::ip::tcp::socket peer = acceptor.accept();
      try {
        serve(peer);
      } catch (const boost::system::system_error&) {
        // The connection went away: the results tell.
      }
    });
    asio::ip::tcp::socket socket(io_);
    socket.open(asio::ip::tcp::v4());
    if (small_buffers) {
      socket.set_option(small_send);
      socket.set_option(small_receive);
    }
    socket.connect(acceptor.local_endpoint());
    socket.non_blocking(true);
    options_.max_pipeline = count;
    auto connection = std::make_shared<HttpClientConnection<asio::ip::tcp::socket>>(
        std::move(socket), "replica", options_,
        std::make_shared<DeadlineSweep>(io_.get_executor()));
    std::vector<std::string> heads;
    for (int i = 0; i < count; ++i) {
      heads.push_back(absl::StrCat(R"({"id":")", i, R"(","pad":")", std::string(pad, 'x'), "\""));
    }
    std::vector<HttpResult> results(count);
    for (int i = 0; i < count; ++i) {
      connection->RoundTrip("/invoke", heads[i], R"(,"attempt":1})",
                            std::chrono::steady_clock::now() + 5s,
                            [&results, i](HttpResult r) { results[i] = std::move(r); });
    }
    io_.run();
    replica.join();
    return results;
  }

  // Reads from `peer` until `count` whole requests came (each ends its body with "attempt":1}).
  static void ReadRequests(asio::ip::tcp::socket& peer, std::string& received, int count) {
    auto requests = [&] {
      int seen = 0;
      for (size_t at = 0; (at = received.find(R"("attempt":1})", at)) != std::string::npos; ++at) {
        ++seen;
      }
      return seen;
    };
    char bytes[64 << 10];
    while (requests() < count) received.append(bytes, peer.read_some(asio::buffer(bytes)));
  }

  asio::io_context io_;
  HttpClientOptions options_{.max_response_bytes = 1024, .max_header_bytes = 1024};
};

TEST_F(HttpClientConnectionSocketTest, AResponseEndedByItsConnectionCompletes) {
  HttpResult result = AnswerAndClose("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
  EXPECT_EQ(result.error, HttpError::kNone);  // not kTimeout after 5 s
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "until the end");
}

TEST_F(HttpClientConnectionSocketTest, AResponseCutShortByItsConnectionFails) {
  HttpResult result = AnswerAndClose("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_EQ(result.error, HttpError::kClosed);  // not kTimeout after 5 s
  EXPECT_TRUE(result.response_started);
}

// The replica answers the first of three pipelined requests and closes the connection, saying so
// or not: the two behind it end at once as unanswered (not at their deadline, 5 s later).
TEST_F(HttpClientConnectionSocketTest, ClosingAfterTheFirstAnswerEndsThoseBehindItAtOnce) {
  for (const std::string answer :
       {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}) {
    SCOPED_TRACE(answer);
    io_.restart();
    std::vector<HttpResult> results = Pipelined(3, 0, [&](asio::ip::tcp::socket& peer) {
      std::string received;
      ReadRequests(peer, received, 3);
      asio::write(peer, asio::buffer(answer));
      peer.close();
    });
    EXPECT_EQ(results[0].body, "ok");
    EXPECT_EQ(results[1].error, HttpError::kClosed);
    EXPECT_FALSE(results[1].response_started);
    EXPECT_EQ(results[2].error, HttpError::kDisplaced);
  }
}

// A batch larger than the sockets' buffers, to a replica that answers the first request with
// more than they hold before it reads the next ones: the answers are read while the batch is
// still being written, so neither side waits for the other.
TEST_F(HttpClientConnectionSocketTest, AnswersAreReadWhileABatchIsStillBeingWritten) {
  constexpr int kRequests = 64;
  const std::string big(1 << 20, 'b');
  options_.max_response_bytes = 2 << 20;
  std::vector<HttpResult> results = Pipelined(
      kRequests, 16'000,
      [&](asio::ip::tcp::socket& peer) {
        std::string received;
        ReadRequests(peer, received, 1);
        asio::write(peer, asio::buffer(absl::StrCat(
                              "HTTP/1.1 200 OK\r\nContent-Length: ", big.size(), "\r\n\r\n", big)));
        ReadRequests(peer, received, kRequests);
        for (int i = 1; i < kRequests; ++i) {
          asio::write(
              peer,
              asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")));
        }
      },
      /*small_buffers=*/true);
  EXPECT_EQ(results[0].error, HttpError::kNone);  // not kTimeout after 5 s
  EXPECT_EQ(results[0].body.size(), big.size());
  for (int i = 1; i < kRequests; ++i) EXPECT_EQ(results[i].body, "ok") << i;
}

// Two pipelined answers come in one read, then the replica closes the connection. The next round
// trip, with a large body (written at once), meets the end of the stream, and still completes
// only once RoundTrip returned.
TEST_F(HttpClientConnectionSocketTest, ARoundTripAfterABatchNeverCompletesInsideRoundTrip) {
  asio::ip::tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
  std::thread replica([&] {
    asio::ip::tcp::socket peer = acceptor.accept();
    std::string received;
    ReadRequests(peer, received, 2);
    asio::write(peer,
                asio::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"
                                              "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nb")));
    peer.close();
  });
  asio::ip::tcp::socket socket(io_);
  socket.connect(acceptor.local_endpoint());
  socket.non_blocking(true);
  options_.max_pipeline = 2;
  auto connection = std::make_shared<HttpClientConnection<asio::ip::tcp::socket>>(
      std::move(socket), "replica", options_, std::make_shared<DeadlineSweep>(io_.get_executor()));
  std::vector<std::string> bodies;
  for (int i = 0; i < 2; ++i) {
    connection->RoundTrip("/invoke", R"({"id":"1")", R"(,"attempt":1})",
                          std::chrono::steady_clock::now() + 5s,
                          [&](HttpResult r) { bodies.push_back(r.body); });
  }
  io_.run();
  replica.join();  // the end of the stream is there
  ASSERT_EQ(bodies, (std::vector<std::string>{"a", "b"}));

  const std::string large = absl::StrCat(R"({"id":"2","pad":")", std::string(20'000, 'x'), "\"");
  bool done = false;
  connection->RoundTrip("/invoke", large, R"(,"attempt":1})", std::chrono::steady_clock::now() + 5s,
                        [&](HttpResult) { done = true; });
  EXPECT_FALSE(done) << "completed inside RoundTrip";
  io_.restart();
  io_.run();
  EXPECT_TRUE(done);
}

}  // namespace
}  // namespace eofaas::proxy
