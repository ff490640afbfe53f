// HttpLister against real HTTP servers on loopback: python3's http.server, which answers HEAD
// with Content-Length but without Accept-Ranges (the "ranges unsupported" case), the same server
// told to add `Accept-Ranges: bytes` and an ETag, or to refuse HEAD (as S3 does for a URL
// presigned for GET); nginx for https:// with a self-signed certificate. Also the failures a
// HEAD can meet.
#include "proxy/plan/http_lister.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/subprocess.h"
#include "proxy/plan/planner.h"
#include "tests/support/eventually.h"
#include "tests/support/nginx.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

using ::testing::HasSubstr;

// argv: the served directory and the mode:
// - plain: http.server as it is (HEAD and GET with Content-Length, no ranges, no ETag);
// - ranges: plus `Accept-Ranges: bytes` and an ETag;
// - no-head: HEAD refused with 403, as S3 refuses it for a URL presigned for GET; GET reads one
//   range (206 with Content-Range, 416 past the end) and has an ETag;
// - no-head-no-ranges: HEAD refused with 405; GET ignores Range (200, the whole body);
// - forbidden: 403 to everything.
// Each request is logged as `"<request line> range=<Range header or ->" <status>`.
constexpr char kServerScript[] = R"(
import http.server, os, sys
mode = sys.argv[2]
class Handler(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code="-", size="-"):
        self.log_message('"%s range=%s" %s', self.requestline, self.headers.get("Range", "-"),
                         str(code))
    def end_headers(self):
        if mode in ("ranges", "no-head"):
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", '"v1"')
        super().end_headers()
    def do_HEAD(self):
        if mode in ("no-head", "forbidden"):
            return self.send_error(403)
        if mode == "no-head-no-ranges":
            return self.send_error(405)
        super().do_HEAD()
    def do_GET(self):
        if mode == "forbidden":
            return self.send_error(403)
        if mode != "no-head":
            return super().do_GET()
        with open(self.translate_path(self.path), "rb") as f:
            data = f.read()
        first, last = (int(n) for n in self.headers["Range"].removeprefix("bytes=").split("-"))
        if first >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        part = data[first:last + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {first}-{first + len(part) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)
os.chdir(sys.argv[1])
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// python3 -m http.server's handler serving `dir` on 127.0.0.1, stopped with the object.
class PythonHttpServer {
 public:
  PythonHttpServer(const std::string& dir, const std::string& mode, const std::string& log_path)
      : log_path_(log_path) {
    common::SpawnOptions options;
    options.argv = {"/usr/bin/python3", "-c", kServerScript, dir, mode};
    options.output_path = log_path;
    absl::StatusOr<pid_t> pid = common::Spawn(options);
    EXPECT_TRUE(pid.ok()) << pid.status();
    if (!pid.ok()) return;
    pid_ = *pid;
    // The script prints its port on the first line once it listens.
    for (int i = 0; i < 500; ++i) {
      std::string log = ReadFile(log_path);
      if (size_t newline = log.find('\n'); newline != std::string::npos) {
        EXPECT_TRUE(absl::SimpleAtoi(log.substr(0, newline), &port_)) << log;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_NE(port_, 0) << ReadFile(log_path);
  }
  ~PythonHttpServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  /// The requests the server logged ("HEAD /a.txt HTTP/1.1 range=-").
  std::vector<std::string> Requests() const {
    std::vector<std::string> requests;
    // `127.0.0.1 - - [<time>] "<request>" <status>`; other lines (a traceback of a client that
    // hung up mid-body) are not requests.
    for (absl::string_view line : absl::StrSplit(ReadFile(log_path_), '\n')) {
      size_t open = line.find("] \"");
      size_t close = line.rfind('"');
      if (open != absl::string_view::npos && close > open + 2) {
        requests.emplace_back(line.substr(open + 3, close - open - 3));
      }
    }
    return requests;
  }

 private:
  std::string log_path_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class HttpListerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    temp_.Write("www/data.csv", std::string(1000, 'x'));
    temp_.Write("www/empty.txt", "");
    temp_.Write("www/dir/inner.txt", "inner");
  }

  absl::Status List(const HttpLister& lister, const std::string& uri_text, ObjectList& out,
                    const std::stop_token& stop = {}) {
    absl::StatusOr<DataUri> uri = ParseDataUri(uri_text, "inputs[0]");
    if (!uri.ok()) return uri.status();
    return lister.List(*uri, "inputs[0]", stop, out);
  }

  tests::TempDir temp_;
  HttpLister lister_{{.timeout = absl::Seconds(5)}};
};

TEST_F(HttpListerTest, PlainHttpServerGivesSizeButNoRanges) {
  PythonHttpServer server(temp_ / "www", "plain", temp_ / "server.log");
  ObjectList out;
  ASSERT_TRUE(List(lister_, server.Url("/data.csv"), out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].uri(), server.Url("/data.csv"));
  EXPECT_EQ(out[0].size, 1000);
  EXPECT_FALSE(out[0].ranges_supported);
  EXPECT_EQ(out[0].etag, "");
  ASSERT_TRUE(List(lister_, server.Url("/empty.txt"), out).ok());
  EXPECT_EQ(out[1].size, 0);
  EXPECT_THAT(server.Requests(), ::testing::Each(::testing::StartsWith("HEAD ")));
}

TEST_F(HttpListerTest, RangesAndEtagWhenTheServerSaysSo) {
  PythonHttpServer server(temp_ / "www", "ranges", temp_ / "server.log");
  ObjectList out;
  ASSERT_TRUE(List(lister_, server.Url("/data.csv"), out).ok());
  EXPECT_EQ(out[0].size, 1000);
  EXPECT_TRUE(out[0].ranges_supported);
  EXPECT_EQ(out[0].etag, "\"v1\"");
}

TEST_F(HttpListerTest, RedirectIsFollowedAndTheUriKept) {
  PythonHttpServer server(temp_ / "www", "plain", temp_ / "server.log");
  ObjectList out;
  // http.server redirects a directory without its trailing slash.
  ASSERT_TRUE(List(lister_, server.Url("/dir"), out).ok());
  EXPECT_EQ(out[0].uri(), server.Url("/dir"));
  EXPECT_THAT(server.Requests(), ::testing::ElementsAre(::testing::StartsWith("HEAD /dir "),
                                                        ::testing::StartsWith("HEAD /dir/ ")));
}

// The size comes from a GET of the first byte when HEAD is refused: Content-Range gives it, and
// the body is cut off unread.
TEST_F(HttpListerTest, RefusedHeadFallsBackToAGetOfTheFirstByte) {
  PythonHttpServer server(temp_ / "www", "no-head", temp_ / "server.log");
  ObjectList out;
  absl::Status status = List(lister_, server.Url("/data.csv"), out);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(out[0].uri(), server.Url("/data.csv"));
  EXPECT_EQ(out[0].size, 1000);
  EXPECT_TRUE(out[0].ranges_supported);
  EXPECT_EQ(out[0].etag, "\"v1\"");
  // An empty object: 416 with "bytes */0".
  status = List(lister_, server.Url("/empty.txt"), out);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(out[1].size, 0);
  EXPECT_THAT(server.Requests(), ::testing::ElementsAre("HEAD /data.csv HTTP/1.1 range=-",
                                                        "GET /data.csv HTTP/1.1 range=bytes=0-0",
                                                        "HEAD /empty.txt HTTP/1.1 range=-",
                                                        "GET /empty.txt HTTP/1.1 range=bytes=0-0"));
}

// A server without HEAD that ignores Range answers the GET with the whole object: its size is
// the Content-Length, and it is not split.
TEST_F(HttpListerTest, RefusedHeadAndIgnoredRangeGiveTheLengthWithoutRanges) {
  temp_.Write("www/big.bin", std::string(4 << 20, 'b'));
  PythonHttpServer server(temp_ / "www", "no-head-no-ranges", temp_ / "server.log");
  ObjectList out;
  absl::Status status = List(lister_, server.Url("/big.bin"), out);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(out[0].size, 4 << 20);
  EXPECT_FALSE(out[0].ranges_supported);
  EXPECT_THAT(server.Requests(), ::testing::ElementsAre("HEAD /big.bin HTTP/1.1 range=-",
                                                        "GET /big.bin HTTP/1.1 range=bytes=0-0"));
}

TEST_F(HttpListerTest, ForbiddenObjectIsPermissionDeniedAfterBothProbes) {
  PythonHttpServer server(temp_ / "www", "forbidden", temp_ / "server.log");
  ObjectList out;
  absl::Status status = List(lister_, server.Url("/data.csv"), out);
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_EQ(status.message(), absl::StrCat("inputs[0]: GET (first byte) ", server.Url("/data.csv"),
                                           " answered 403 (HEAD answered 403)"));
  EXPECT_EQ(out.size(), 0u);
}

TEST_F(HttpListerTest, MissingObjectIsNotFound) {
  PythonHttpServer server(temp_ / "www", "plain", temp_ / "server.log");
  ObjectList out;
  absl::Status status = List(lister_, server.Url("/missing.csv"), out);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("inputs[0]: HEAD "));
  EXPECT_THAT(std::string(status.message()), HasSubstr("answered 404"));
}

TEST_F(HttpListerTest, RefusedConnectionIsUnavailable) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  // Bound and never listening: connections are refused, and no other process takes the port.
  ObjectList out;
  absl::Status status =
      List(lister_, absl::StrCat("http://127.0.0.1:", ntohs(address.sin_port), "/x"), out);
  close(fd);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("inputs[0]: "));
}

// A loopback server that listens but never accepts: a connection completes in the backlog, and
// no answer ever comes.
class SilentServer {
 public:
  SilentServer() {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on loopback: " << strerror(errno);
    }
    url_ = absl::StrCat("http://127.0.0.1:", ntohs(address.sin_port), "/x");
  }
  ~SilentServer() { close(fd_); }

  const std::string& url() const { return url_; }

 private:
  const int fd_ = socket(AF_INET, SOCK_STREAM, 0);
  std::string url_;
};

TEST_F(HttpListerTest, SilentServerTimesOut) {
  SilentServer silent;
  HttpLister quick({.timeout = absl::Milliseconds(300)});
  ObjectList out;
  absl::Status status = List(quick, silent.url(), out);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
}

// A probe waiting on a server that never answers ends once its stop is requested, long before its
// timeout: CANCELLED, where the timeout would be DEADLINE_EXCEEDED.
TEST_F(HttpListerTest, RequestedStopEndsAWaitingProbe) {
  SilentServer silent;
  HttpLister patient({.timeout = absl::Seconds(60)});
  std::stop_source stop;
  std::thread stopper([&] {
    absl::SleepFor(absl::Milliseconds(200));
    stop.request_stop();
  });
  ObjectList out;
  absl::Status status = List(patient, silent.url(), out, stop.get_token());
  stopper.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("inputs[0]: "));
  EXPECT_EQ(out.size(), 0u);
}

TEST_F(HttpListerTest, HttpsServerIsTrustedThroughTheCaFile) {
  auto nginx = tests::Nginx::Start(temp_ / "www", temp_ / "nginx");
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  HttpLister trusting({.timeout = absl::Seconds(5), .ca_file = (*nginx)->certificate()});
  ObjectList out;
  absl::Status status = List(trusting, (*nginx)->HttpsUrl("data.csv"), out);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(out[0].uri(), (*nginx)->HttpsUrl("data.csv"));
  EXPECT_EQ(out[0].size, 1000);
  EXPECT_TRUE(out[0].ranges_supported);
  EXPECT_NE(out[0].etag, "");
  // nginx logs a request once it is done with it, which may be just after the answer came.
  EXPECT_TRUE(tests::Eventually([&] { return !(*nginx)->AccessLog().empty(); }));
  EXPECT_THAT((*nginx)->AccessLog(), ::testing::StartsWith("HEAD /data.csv "));
}

// Asking again would not make the certificate check out: FAILED_PRECONDITION, not UNAVAILABLE.
TEST_F(HttpListerTest, UntrustedCertificateIsAFailedPrecondition) {
  auto nginx = tests::Nginx::Start(temp_ / "www", temp_ / "nginx");
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  ObjectList out;
  absl::Status status = List(lister_, (*nginx)->HttpsUrl("data.csv"), out);  // the system's CAs
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("inputs[0]: HEAD https://"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("certificate"));
  EXPECT_EQ(out.size(), 0u);

  HttpLister missing_ca({.timeout = absl::Seconds(5), .ca_file = temp_ / "missing.pem"});
  status = List(missing_ca, (*nginx)->HttpsUrl("data.csv"), out);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ((*nginx)->AccessLog(), "");  // neither reached nginx's HTTP layer
}

TEST_F(HttpListerTest, PlannerDoesNotSplitWithoutRanges) {
  PythonHttpServer server(temp_ / "www", "plain", temp_ / "server.log");
  eofaas::v1::Partitioning partitioning;
  partitioning.set_chunk_bytes(100);
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Planner::Create({server.Url("/data.csv")}, partitioning, Listers{nullptr, &lister_});
  ASSERT_TRUE(planner.ok()) << planner.status();
  EXPECT_EQ((*planner)->items(), 1);
  EXPECT_EQ((*planner)->bytes(), 1000);
  std::optional<eofaas::v1::DataCursor> cursor = (*planner)->Next();
  ASSERT_TRUE(cursor.has_value());
  EXPECT_EQ(cursor->offset(), 0);
  EXPECT_EQ(cursor->length(), 1000);
  EXPECT_EQ(cursor->parts(), 1);
  EXPECT_EQ((*planner)->Next(), std::nullopt);
}

TEST_F(HttpListerTest, PlannerSplitsWithRanges) {
  PythonHttpServer server(temp_ / "www", "ranges", temp_ / "server.log");
  eofaas::v1::Partitioning partitioning;
  partitioning.set_chunk_bytes(300);
  absl::StatusOr<std::unique_ptr<Planner>> planner =
      Planner::Create({server.Url("/data.csv")}, partitioning, Listers{nullptr, &lister_});
  ASSERT_TRUE(planner.ok()) << planner.status();
  EXPECT_EQ((*planner)->items(), 4);
  int64_t covered = 0;
  while (std::optional<eofaas::v1::DataCursor> cursor = (*planner)->Next()) {
    EXPECT_EQ(cursor->offset(), covered);
    EXPECT_EQ(cursor->etag(), "\"v1\"");
    covered += cursor->length();
  }
  EXPECT_EQ(covered, 1000);
  EXPECT_THAT(server.Requests(), ::testing::ElementsAre(::testing::StartsWith("HEAD ")));
}

}  // namespace
}  // namespace eofaas::proxy
