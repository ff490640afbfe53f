// The helpers around a local replica process: its environment, its log tail, the health probe.
#include "control/deploy/replica_process.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "control/deploy/health_probe.h"
#include "tests/support/temp_dir.h"

namespace eofaas::control {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;

TEST(ReplicaEnvironmentTest, PlatformVariablesWinOverTheUsers) {
  ReplicaIdentity identity{"fn", "fn-b2c4d", 7, 1, 40123, 4};
  auto env = ReplicaEnvironment(identity, {{"MODE", "fast"}, {"EOFAAS_PORT", "1"}, {"PATH", "/x"}},
                                "instance-a", 10000);
  EXPECT_THAT(env, Contains("MODE=fast"));
  EXPECT_THAT(env, Contains("EOFAAS_PORT=40123"));
  EXPECT_THAT(env, Not(Contains("EOFAAS_PORT=1")));
  EXPECT_THAT(env, Contains("PATH=/usr/local/bin:/usr/bin:/bin"));
  for (const char* expected :
       {"EOFAAS_HOST=127.0.0.1", "EOFAAS_CONCURRENCY=4", "EOFAAS_DRAIN_TIMEOUT_MS=10000",
        "EOFAAS_FUNCTION=fn", "EOFAAS_GENERATION=7", "EOFAAS_REPLICA=1",
        "EOFAAS_DEPLOYMENT=fn-b2c4d", "EOFAAS_INSTANCE=instance-a", "HOME=/tmp", "LANG=C.UTF-8",
        "PYTHONDONTWRITEBYTECODE=1"}) {
    EXPECT_THAT(env, Contains(expected));
  }
}

TEST(TailLinesTest, KeepsTheLastNonBlankLinesOfTheLastRun) {
  tests::TempDir temp;
  const std::string path =
      temp.Write("r.log", "--- run 1\nold\n--- run 2\nstarting\n\nloading\r\nboom\n\n");
  EXPECT_THAT(TailLines(path, 2), ElementsAre("loading", "boom"));
  EXPECT_THAT(TailLines(path, 10, "--- "), ElementsAre("starting", "loading", "boom"));
  EXPECT_THAT(TailLines(path, 10), Contains("old"));
  EXPECT_TRUE(TailLines(temp / "missing.log", 3).empty());
}

TEST(TailLinesTest, ReadsOnlyTheEndOfALongFile) {
  tests::TempDir temp;
  const std::string path = temp.Write("r.log", std::string(100000, 'x') + "\nlast\n");
  EXPECT_THAT(TailLines(path, 5), ElementsAre("last"));
}

// A loopback listener that accepts and answers each connection with `answer` (none: stays
// silent).
class FakeReplica {
 public:
  explicit FakeReplica(std::string answer) : answer_(std::move(answer)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    listen(fd_, 8);
    thread_ = std::thread([this] {
      int client = accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      char request[512];
      (void)!read(client, request, sizeof(request));
      if (!answer_.empty()) (void)!write(client, answer_.data(), answer_.size());
      while (read(client, request, sizeof(request)) > 0) {
      }  // until the prober hangs up
      close(client);
    });
  }
  ~FakeReplica() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  int port() const { return port_; }

 private:
  std::string answer_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(ProbeHealthTest, ReturnsTheStatusCode) {
  FakeReplica ok("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(ProbeHealth(ok.port()).value_or(-1), 200);
  FakeReplica draining("HTTP/1.0 503 Service Unavailable\r\n\r\n");
  EXPECT_EQ(ProbeHealth(draining.port()).value_or(-1), 503);
}

TEST(ProbeHealthTest, SilentReplicaTimesOut) {
  FakeReplica silent("");
  const auto start = std::chrono::steady_clock::now();
  // Well above the default timeout, so that the time taken shows which one was kept.
  auto code = ProbeHealth(silent.port(), std::chrono::milliseconds(1000));
  EXPECT_EQ(code.status().code(), absl::StatusCode::kDeadlineExceeded);
  const auto taken = std::chrono::steady_clock::now() - start;
  EXPECT_GE(taken, std::chrono::milliseconds(1000));
  EXPECT_LT(taken, std::chrono::milliseconds(3000));
}

TEST(ProbeHealthTest, ClosedPortIsUnavailable) {
  auto port = ReserveLoopbackPort();
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);
  EXPECT_EQ(ProbeHealth(*port).status().code(), absl::StatusCode::kUnavailable);
}

TEST(ProbeHealthTest, GarbageIsAnError) {
  FakeReplica garbage("SSH-2.0-OpenSSH\r\n");
  EXPECT_EQ(ProbeHealth(garbage.port()).status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace eofaas::control
