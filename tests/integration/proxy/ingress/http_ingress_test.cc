// The HTTP/1.1 ingress end to end: the real eofaas-proxy (--endpoints) in front of python3
// replicas running the linecount example and of fault replicas (tests/fixtures/fault_replica.py),
// called over keep-alive connections.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/integration/proxy/dispatch/replica_processes.h"
#include "tests/integration/proxy/ingress/proxy_process.h"
#include "tests/support/eventually.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"

namespace eofaas::tests {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;

const std::string kScene = EOFAAS_SOURCE_DIR "/examples/data/scenes/2024-03.txt";

struct Answer {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  bool keep_alive = false;
};

// One client connection, kept alive between requests.
class Connection {
 public:
  explicit Connection(const std::string& address) : socket_(io_) {
    const size_t colon = address.rfind(':');
    asio::ip::tcp::resolver resolver(io_);
    asio::connect(socket_, resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
  }

  Answer Send(const std::string& method, const std::string& target, const std::string& body,
              const std::string& content_type = "application/json") {
    http::request<http::string_body> request(http::string_to_verb(method), target, 11);
    request.set(http::field::host, "proxy");
    if (!content_type.empty()) request.set(http::field::content_type, content_type);
    request.body() = body;
    request.prepare_payload();
    http::write(socket_, request);
    return Read();
  }

  // Writes `bytes` as they are (several requests, or one in pieces), then reads one answer.
  void SendRaw(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }
  Answer Read() {
    http::response<http::string_body> response;
    http::read(socket_, buffer_, response);
    Answer answer{.status = static_cast<int>(response.result_int()),
                  .body = response.body(),
                  .keep_alive = response.keep_alive()};
    for (const auto& field : response) {
      answer.headers[std::string(field.name_string())] = std::string(field.value());
    }
    return answer;
  }

  // Writes `bytes` and the end of the stream in one segment (held back by TCP_CORK until the
  // half-close sends both), so that the server finds them together.
  void SendRawAndClose(const std::string& bytes) {
    const int cork = 1;
    setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_CORK, &cork, sizeof(cork));
    SendRaw(bytes);
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send);
  }

  // Reads the answer to a HEAD request: a head only, whatever its Content-Length says.
  Answer ReadHead() {
    http::response_parser<http::empty_body> parser;
    parser.skip(true);
    http::read(socket_, buffer_, parser);
    Answer answer{.status = static_cast<int>(parser.get().result_int()),
                  .keep_alive = parser.get().keep_alive()};
    for (const auto& field : parser.get()) {
      answer.headers[std::string(field.name_string())] = std::string(field.value());
    }
    return answer;
  }

  // True when the server closed the connection (a read finds its end).
  bool ClosedByServer() {
    boost::system::error_code error;
    char byte;
    socket_.read_some(asio::buffer(&byte, 1), error);
    return error == asio::error::eof || error == asio::error::connection_reset;
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// The lines of the file at `path` that contain `text`.
int LinesContaining(const std::string& path, const std::string& text) {
  std::ifstream in(path);
  int count = 0;
  for (std::string line; std::getline(in, line);) count += absl::StrContains(line, text);
  return count;
}

std::string InvokeBody(const std::string& uri, const std::string& extra = "") {
  return absl::StrCat(R"({"cursor": {"uri": "file://)", uri, R"(", "framing": "FRAMING_LINES"})",
                      extra, "}");
}

class HttpIngressTest : public ::testing::Test {
 protected:
  // The proxy over these --endpoints functions (name → "address:concurrency" list), with `flags`.
  void StartProxy(const std::map<std::string, std::vector<std::string>>& functions,
                  std::vector<std::string> flags = {}) {
    std::string yaml = "functions:\n";
    for (const auto& [name, replicas] : functions) {
      absl::StrAppend(&yaml, "  ", name, ":", replicas.empty() ? " []" : "", "\n");
      for (const auto& replica : replicas) {
        const size_t colon = replica.rfind(':');
        absl::StrAppend(&yaml, "    - address: ", replica.substr(0, colon),
                        "\n      concurrency: ", replica.substr(colon + 1), "\n");
      }
    }
    flags.push_back("--endpoints=" + dir_.Write("endpoints.yaml", yaml));
    flags.push_back("--data_root=" EOFAAS_SOURCE_DIR "/examples/data");
    auto proxy = ProxyProcess::Start(std::move(flags), dir_ / "proxy.log");
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
  }

  std::unique_ptr<ReplicaProcess> StartLinecount() {
    auto replica = ReplicaProcess::Start(
        {"/usr/bin/python3", "-B", EOFAAS_SOURCE_DIR "/templates/python3/runtime/server.py"},
        {"PATH=/usr/bin:/bin", "EOFAAS_PORT=0", "EOFAAS_FUNCTION=linecount", "EOFAAS_CONCURRENCY=4",
         "EOFAAS_FUNCTION_DIR=" EOFAAS_SOURCE_DIR "/examples/python3-linecount"},
        dir_ / "linecount.log", "/healthz");
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? *std::move(replica) : nullptr;
  }

  std::unique_ptr<ReplicaProcess> StartFault(const std::string& name,
                                             std::vector<std::string> env) {
    auto replica = StartFaultReplica(dir_, name, std::move(env));
    EXPECT_TRUE(replica.ok()) << replica.status();
    return replica.ok() ? *std::move(replica) : nullptr;
  }

  // Waits until the proxy's /metrics holds the line `series`.
  bool AwaitMetric(const std::string& series) {
    return Eventually([&] {
      auto metrics = HttpRequest(proxy_->metrics_address(), "GET", "/metrics");
      return metrics.ok() && absl::StrContains(metrics->body, "\n" + series + "\n");
    });
  }

  void TearDown() override {
    if (HasFailure() && proxy_) std::cerr << "proxy log:\n" << proxy_->Log();
  }

  TempDir dir_;
  std::unique_ptr<ProxyProcess> proxy_;
};

TEST_F(HttpIngressTest, InvokesOverKeepAliveConnections) {
  auto replica = StartLinecount();
  ASSERT_NE(replica, nullptr);
  StartProxy({{"linecount", {replica->address() + ":4"}}});
  Connection connection(proxy_->http_address());

  Answer answer = connection.Send("POST", "/v1/functions/linecount:invoke", InvokeBody(kScene));
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.body, R"({"lines":25,"bytes":2138,"part":0})");
  EXPECT_EQ(answer.headers["Content-Type"], "application/octet-stream");
  EXPECT_EQ(answer.headers["X-Eofaas-Replica"], replica->address());
  EXPECT_EQ(answer.headers["X-Eofaas-Attempts"], "1");
  EXPECT_TRUE(answer.keep_alive);

  // The same connection again, with args reaching the handler untouched.
  answer = connection.Send("POST", "/v1/functions/linecount:invoke",
                           InvokeBody(kScene, R"(, "args": {"contains": "T32TQM"})"));
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.body, absl::StrCat(R"({"lines":)", LinesContaining(kScene, "T32TQM"),
                                      R"(,"bytes":2138,"part":0})"));

  // A function error: 200, the header, and the error as the replica reported it.
  answer = connection.Send("POST", "/v1/functions/linecount:invoke",
                           InvokeBody(kScene, R"(, "args": {"contains": 7})"));
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.headers["X-Eofaas-Function-Error"], "handled");
  EXPECT_EQ(answer.headers["Content-Type"], "application/json");
  EXPECT_EQ(answer.body,
            R"({"error":{"type":"FunctionError","message":"args.contains must be a string"}})");

  auto metrics = HttpRequest(proxy_->metrics_address(), "GET", "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_TRUE(absl::StrContains(
      metrics->body, R"(eofaas_proxy_invocations_total{function="linecount",outcome="success"} 2)"))
      << metrics->body;
}

TEST_F(HttpIngressTest, LargeResultsArriveWholeAndTheConnectionStaysUsable) {
  // Larger than what the ingress copies next to the answer's head, and than one socket write.
  std::string large;
  for (int i = 0; large.size() < 120'000; ++i) absl::StrAppend(&large, "line ", i, "\n");
  auto replica = StartFault("large", {"FAULT_BODY=" + large});
  ASSERT_NE(replica, nullptr);
  StartProxy({{"large", {replica->address() + ":2"}}});
  Connection connection(proxy_->http_address());

  for (int round = 0; round < 2; ++round) {
    Answer answer = connection.Send("POST", "/v1/functions/large:invoke", InvokeBody(kScene));
    EXPECT_EQ(answer.status, 200) << round;
    EXPECT_EQ(answer.body.size(), large.size()) << round;
    EXPECT_TRUE(answer.body == large) << round;
    EXPECT_TRUE(answer.keep_alive) << round;
  }
}

TEST_F(HttpIngressTest, BadRequestsGetTheirStatusAndNameTheField) {
  auto replica = StartLinecount();
  ASSERT_NE(replica, nullptr);
  StartProxy({{"linecount", {replica->address() + ":4"}}});
  Connection connection(proxy_->http_address());
  const std::string invoke = "/v1/functions/linecount:invoke";
  auto expect = [&](const Answer& answer, int status, const std::string& code,
                    const std::string& message_start) {
    EXPECT_EQ(answer.status, status) << answer.body;
    EXPECT_TRUE(absl::StartsWith(answer.body, absl::StrCat(R"({"error":{"code":")", code,
                                                           R"(","message":")", message_start)))
        << answer.body;
  };

  expect(connection.Send("POST", "/v1/functions/nope:invoke", InvokeBody(kScene)), 404, "NOT_FOUND",
         "");
  expect(connection.Send("POST", "/v1/functions/Not_A_Name:invoke", InvokeBody(kScene)), 400,
         "INVALID_ARGUMENT", "function:");
  expect(connection.Send("POST", invoke, R"({"cursor": {}})"), 400, "INVALID_ARGUMENT",
         "cursor.uri");
  expect(connection.Send("POST", invoke,
                         R"({"cursor": {"uri": "file://)" + kScene + R"(", "offset": "-1"}})"),
         400, "INVALID_ARGUMENT", "cursor.offset");
  expect(connection.Send("POST", invoke, R"({"cursor": )"), 400, "INVALID_ARGUMENT", "body:");
  expect(connection.Send("POST", invoke, R"({"cursor": {"uri": "file:///x"}, "extra": 1})"), 400,
         "INVALID_ARGUMENT", "body:");
  expect(connection.Send("POST", invoke, R"({"function": "linecount"})"), 400, "INVALID_ARGUMENT",
         "body: function");
  expect(connection.Send("POST", invoke, InvokeBody(kScene, R"(, "timeout": "-1s")")), 400,
         "INVALID_ARGUMENT", "timeout:");
  expect(connection.Send("POST", invoke, InvokeBody("/etc/hostname")), 403, "PERMISSION_DENIED",
         "");
  expect(connection.Send("POST", invoke,
                         InvokeBody(EOFAAS_SOURCE_DIR "/examples/data/../../../etc/hostname")),
         403, "PERMISSION_DENIED", "");
  expect(connection.Send("POST", invoke, InvokeBody(kScene), "text/plain"), 415, "INVALID_ARGUMENT",
         "Content-Type");
  expect(connection.Send("POST", "/v1/functions/linecount", InvokeBody(kScene)), 404, "NOT_FOUND",
         "no route");
  Answer get = connection.Send("GET", invoke, "", "");
  expect(get, 405, "INVALID_ARGUMENT", "method GET");
  EXPECT_EQ(get.headers["Allow"], "POST");
  // The answer to HEAD has GET's head and no body: the next answer is read right after it.
  connection.SendRaw(absl::StrCat("HEAD ", invoke, " HTTP/1.1\r\nHost: proxy\r\n\r\n"));
  Answer head = connection.ReadHead();
  EXPECT_EQ(head.status, 405);
  // GET's body, where the message names HEAD, one letter longer.
  EXPECT_EQ(head.headers["Content-Length"], std::to_string(get.body.size() + 1));
  // Every answer kept the connection: it still serves.
  EXPECT_EQ(connection.Send("POST", invoke, InvokeBody(kScene)).status, 200);

  // A body over the limit ends the connection with 413.
  Connection big(proxy_->http_address());
  Answer too_large = big.Send("POST", invoke, std::string(2 << 20, ' '));
  EXPECT_EQ(too_large.status, 413);
  EXPECT_FALSE(too_large.keep_alive);

  // A head over 16 KiB is 431, a transfer coding other than chunked 501; both end the connection.
  Connection huge(proxy_->http_address());
  huge.SendRaw(absl::StrCat("POST ", invoke, " HTTP/1.1\r\nX-Big: ", std::string(17 << 10, 'a'),
                            "\r\n\r\n"));
  Answer head_too_large = huge.Read();
  EXPECT_EQ(head_too_large.status, 431);
  EXPECT_FALSE(head_too_large.keep_alive);
  Connection gzip(proxy_->http_address());
  gzip.SendRaw(
      absl::StrCat("POST ", invoke, " HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
  Answer coding = gzip.Read();
  EXPECT_EQ(coding.status, 501);
  EXPECT_TRUE(absl::StrContains(coding.body, "Transfer-Encoding: gzip is not supported"))
      << coding.body;
  EXPECT_TRUE(gzip.ClosedByServer());
}

// A checked file is taken again without a new check for --cursor_check_ttl (1 s by default);
// with 0 every cursor is checked, so a file swapped for a symlink leading outside is refused at
// once. A negative time to live is refused at start.
TEST_F(HttpIngressTest, CursorCheckTimeToLiveZeroChecksEveryCursor) {
  auto refused = ProxyProcess::Start(
      {"--endpoints=" + dir_.Write("none.yaml", "functions: {}\n"), "--cursor_check_ttl=-1s"},
      dir_ / "refused.log");
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "cursor_check_ttl: -1s is negative"))
      << refused.status();

  auto replica = StartLinecount();
  ASSERT_NE(replica, nullptr);
  const std::string scene = dir_.Write("data/scene.txt", "a\nb\n");
  StartProxy({{"linecount", {replica->address() + ":4"}}},
             {"--data_root=" + dir_ / "data", "--cursor_check_ttl=0"});
  Connection connection(proxy_->http_address());
  const std::string invoke = "/v1/functions/linecount:invoke";
  Answer answer = connection.Send("POST", invoke, InvokeBody(scene));
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_EQ(answer.body, R"({"lines":2,"bytes":4,"part":0})");

  std::filesystem::remove(scene);
  std::filesystem::create_symlink("/etc/hostname", scene);
  answer = connection.Send("POST", invoke, InvokeBody(scene));
  EXPECT_EQ(answer.status, 403) << answer.body;
}

TEST_F(HttpIngressTest, PipelinedChunkedAndHttp10RequestsAreAnswered) {
  auto replica = StartLinecount();
  ASSERT_NE(replica, nullptr);
  StartProxy({{"linecount", {replica->address() + ":4"}}});
  const std::string body = InvokeBody(kScene);
  const std::string expected = R"({"lines":25,"bytes":2138,"part":0})";
  auto post = [&](const std::string& version, const std::string& extra_fields) {
    return absl::StrCat("POST /v1/functions/linecount:invoke ", version, "\r\nHost: proxy\r\n",
                        "Content-Type: application/json\r\n", extra_fields);
  };
  const std::string sized = absl::StrCat(
      post("HTTP/1.1", absl::StrCat("Content-Length: ", body.size(), "\r\n\r\n")), body);

  // Two requests in one write, a third in pieces: three answers, in order.
  Connection connection(proxy_->http_address());
  connection.SendRaw(sized + sized);
  for (int i = 0; i < 2; ++i) {
    Answer answer = connection.Read();
    EXPECT_EQ(answer.status, 200) << answer.body;
    EXPECT_EQ(answer.body, expected);
    EXPECT_TRUE(answer.keep_alive);
  }
  connection.SendRaw(sized.substr(0, 20));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  connection.SendRaw(sized.substr(20, sized.size() - 30));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  connection.SendRaw(sized.substr(sized.size() - 10));
  EXPECT_EQ(connection.Read().body, expected);

  // A chunked body.
  const size_t half = body.size() / 2;
  connection.SendRaw(absl::StrCat(post("HTTP/1.1", "Transfer-Encoding: chunked\r\n\r\n"),
                                  absl::Hex(half), "\r\n", body.substr(0, half), "\r\n",
                                  absl::Hex(body.size() - half), "\r\n", body.substr(half),
                                  "\r\n0\r\n\r\n"));
  Answer chunked = connection.Read();
  EXPECT_EQ(chunked.status, 200) << chunked.body;
  EXPECT_EQ(chunked.body, expected);

  // Malformed HTTP: 400, and the connection ends.
  connection.SendRaw("POST /v1/functions/linecount:invoke HTTP/1.1\r\nContent-Length: x\r\n\r\n");
  Answer malformed = connection.Read();
  EXPECT_EQ(malformed.status, 400);
  EXPECT_FALSE(malformed.keep_alive);
  EXPECT_TRUE(connection.ClosedByServer());

  // HTTP/1.0: closed after the answer unless kept alive.
  Connection old(proxy_->http_address());
  old.SendRaw(absl::StrCat(
      post("HTTP/1.0", absl::StrCat("Content-Length: ", body.size(), "\r\n\r\n")), body));
  Answer closing = old.Read();
  EXPECT_EQ(closing.body, expected);
  EXPECT_FALSE(closing.keep_alive);
  EXPECT_TRUE(old.ClosedByServer());
  Connection kept(proxy_->http_address());
  kept.SendRaw(absl::StrCat(
      post("HTTP/1.0",
           absl::StrCat("Connection: keep-alive\r\n", "Content-Length: ", body.size(), "\r\n\r\n")),
      body));
  Answer alive = kept.Read();
  EXPECT_EQ(alive.body, expected);
  EXPECT_TRUE(alive.keep_alive);
  EXPECT_EQ(alive.headers["Connection"], "keep-alive");
}

TEST_F(HttpIngressTest, TransportFailuresHaveTheirStatus) {
  auto slow = StartFault("slow", {"FAULT_DELAY_MS=3000"});
  ASSERT_NE(slow, nullptr);
  // Nothing listens on the port of a replica that was started and stopped.
  std::string gone;
  {
    auto stopped = StartFault("stopped", {});
    ASSERT_NE(stopped, nullptr);
    gone = stopped->address();
  }
  StartProxy({{"slow", {slow->address() + ":1"}}, {"empty", {}}, {"gone", {gone + ":1"}}},
             {"--queue_limit=1"});
  const std::string body = InvokeBody(kScene);

  Connection connection(proxy_->http_address());
  EXPECT_EQ(connection.Send("POST", "/v1/functions/empty:invoke", body).status, 503);
  EXPECT_EQ(connection.Send("POST", "/v1/functions/gone:invoke", body).status, 503);
  Answer late = connection.Send("POST", "/v1/functions/slow:invoke",
                                InvokeBody(kScene, R"(, "timeout": "0.3s")"));
  EXPECT_EQ(late.status, 504) << late.body;

  // One call on the replica, one queued: the next one finds the queue full.
  auto call = [&] {
    Connection own(proxy_->http_address());
    return own.Send("POST", "/v1/functions/slow:invoke", body).status;
  };
  std::future<int> running = std::async(std::launch::async, call);
  ASSERT_TRUE(AwaitFaultRequests(slow->address(), 2));  // the late call's, and this one
  std::future<int> queued = std::async(std::launch::async, call);
  ASSERT_TRUE(AwaitMetric("eofaas_proxy_queue_depth{function=\"slow\"} 1"));
  EXPECT_EQ(call(), 429);
  EXPECT_EQ(running.get(), 200);
  EXPECT_EQ(queued.get(), 200);
}

// A client that closes its connection while its call runs (as one that timed out does) cancels
// the call: the replica's only slot is free for the next caller long before the answer would come.
// Also when it sent more before it left, which the proxy has not read: a stray CRLF after the
// body (RFC 9112 section 2.2), or its next request.
TEST_F(HttpIngressTest, AClientThatLeavesCancelsItsCall) {
  auto slow = StartFault("slow", {"FAULT_DELAY_MS=30000"});
  ASSERT_NE(slow, nullptr);
  StartProxy({{"slow", {slow->address() + ":1"}}});
  const std::string request = absl::StrCat(
      "POST /v1/functions/slow:invoke HTTP/1.1\r\nHost: proxy\r\n"
      "Content-Type: application/json\r\nContent-Length: ",
      InvokeBody(kScene).size(), "\r\n\r\n", InvokeBody(kScene));
  const std::vector<std::string> sent_after = {"", "\r\n", request};
  for (size_t i = 0; i < sent_after.size(); ++i) {
    SCOPED_TRACE(absl::StrCat("sent after the request: ", absl::CEscape(sent_after[i])));
    {
      Connection leaving(proxy_->http_address());
      leaving.SendRaw(request);
      ASSERT_TRUE(AwaitFaultRequests(slow->address(), static_cast<int>(i) + 1));
      ASSERT_TRUE(AwaitMetric("eofaas_proxy_inflight{function=\"slow\"} 1"));
      if (!sent_after[i].empty()) leaving.SendRaw(sent_after[i]);
    }  // closed
    EXPECT_TRUE(AwaitMetric("eofaas_proxy_inflight{function=\"slow\"} 0"));
    EXPECT_TRUE(AwaitMetric(absl::StrCat(
        "eofaas_proxy_invocations_total{function=\"slow\",outcome=\"cancelled\"} ", i + 1)));
  }
}

// A client that sends its request and its end of stream together (`printf ... | nc` does) is
// answered, then the proxy closes the connection within a check of the timer, not at the 75 s
// idle timeout: a client that reads until the end is not left waiting.
TEST_F(HttpIngressTest, AClientThatClosesWithItsRequestIsAnsweredThenClosed) {
  StartProxy({});
  Connection client(proxy_->http_address());
  // A first request, so that the connection is past the readiness its opening reports.
  EXPECT_EQ(client.Send("POST", "/v1/functions/missing:invoke", InvokeBody(kScene)).status, 404);
  client.SendRawAndClose(
      absl::StrCat("POST /v1/functions/missing:invoke HTTP/1.1\r\nHost: proxy\r\n"
                   "Content-Type: application/json\r\nContent-Length: ",
                   InvokeBody(kScene).size(), "\r\n\r\n", InvokeBody(kScene)));
  EXPECT_EQ(client.Read().status, 404);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(client.ClosedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// RFC 9110 section 10.1.1: a client that sent "Expect: 100-continue" waits for 100 (Continue)
// before its body (curl for a second, others longer).
TEST_F(HttpIngressTest, AClientThatExpectsContinueIsToldToGoOn) {
  StartProxy({});
  Connection client(proxy_->http_address());
  const std::string body = InvokeBody(kScene);
  client.SendRaw(
      absl::StrCat("POST /v1/functions/missing:invoke HTTP/1.1\r\nHost: proxy\r\n"
                   "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: ",
                   body.size(), "\r\n\r\n"));
  std::future<Answer> interim = std::async(std::launch::async, [&] { return client.Read(); });
  ASSERT_EQ(interim.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(interim.get().status, 100);
  client.SendRaw(body);
  EXPECT_EQ(client.Read().status, 404);  // the final answer, once the body came
}

// A request its head alone refuses (no route, a method other than POST, a body that is not JSON)
// is answered at once, without 100 (Continue): its body is never asked for, so the connection
// closes after the answer.
TEST_F(HttpIngressTest, AClientThatExpectsContinueToARefusedHeadGetsTheAnswerAtOnce) {
  StartProxy({});
  const std::vector<std::pair<std::string, int>> heads = {
      {"POST /v1/nothing HTTP/1.1\r\nContent-Type: application/json\r\n", 404},
      {"PUT /v1/functions/echo:invoke HTTP/1.1\r\nContent-Type: application/json\r\n", 405},
      {"POST /v1/functions/echo:invoke HTTP/1.1\r\nContent-Type: text/plain\r\n", 415}};
  for (const auto& [head, status] : heads) {
    Connection client(proxy_->http_address());
    client.SendRaw(absl::StrCat(head, "Host: proxy\r\nExpect: 100-continue\r\n",
                                "Content-Length: 100\r\n\r\n"));
    std::future<Answer> answer = std::async(std::launch::async, [&] { return client.Read(); });
    ASSERT_EQ(answer.wait_for(std::chrono::seconds(10)), std::future_status::ready) << head;
    const Answer got = answer.get();
    ASSERT_EQ(got.status, status) << head;  // else the proxy waits for the body
    EXPECT_FALSE(got.keep_alive) << head;
    EXPECT_TRUE(client.ClosedByServer()) << head;
  }
}

TEST_F(HttpIngressTest, SigtermAnswersTheRequestsInProgressAndClosesIdleConnections) {
  // Slow enough to be still in progress when the proxy is told to stop, and within its grace.
  auto slow = StartFault("slow", {"FAULT_DELAY_MS=3000"});
  ASSERT_NE(slow, nullptr);
  StartProxy({{"slow", {slow->address() + ":4"}}});
  Connection idle(proxy_->http_address());
  EXPECT_EQ(idle.Send("POST", "/v1/functions/slow:invoke", InvokeBody(kScene)).status, 200);

  std::future<Answer> in_progress = std::async(std::launch::async, [&] {
    Connection busy(proxy_->http_address());
    return busy.Send("POST", "/v1/functions/slow:invoke", InvokeBody(kScene));
  });
  ASSERT_TRUE(AwaitFaultRequests(slow->address(), 2));
  proxy_->Terminate();
  EXPECT_TRUE(idle.ClosedByServer());
  Answer answer = in_progress.get();
  EXPECT_EQ(answer.status, 200) << answer.body;
  EXPECT_FALSE(answer.keep_alive);
  const int status = proxy_->Wait();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << proxy_->Log();
}

}  // namespace
}  // namespace eofaas::tests
