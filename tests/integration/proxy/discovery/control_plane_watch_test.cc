// ControlPlaneWatch against the real eofaas-control: endpoints arrive, survive the control
// plane's death, and are resynchronised when it is back.
#include "proxy/discovery/control_plane_watch.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "absl/time/clock.h"
#include "tests/support/control_plane.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

namespace eofaas::proxy {
namespace {

using tests::Eventually;

// Keeps what the watch handed over.
class RecordingSink : public EndpointSink {
 public:
  void Update(std::string_view function, std::vector<ReplicaInfo> replicas) override {
    std::lock_guard lock(mu_);
    functions_[std::string(function)] = std::move(replicas);
  }
  void SetScalesToZero(std::string_view function, bool scales_to_zero) override {
    std::lock_guard lock(mu_);
    scales_to_zero_[std::string(function)] = scales_to_zero;
  }
  void Remove(std::string_view function) override {
    std::lock_guard lock(mu_);
    functions_.erase(std::string(function));
  }
  std::map<std::string, bool> scales_to_zero() {
    std::lock_guard lock(mu_);
    return scales_to_zero_;
  }
  std::map<std::string, std::vector<ReplicaInfo>> functions() {
    std::lock_guard lock(mu_);
    return functions_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<ReplicaInfo>> functions_;
  std::map<std::string, bool> scales_to_zero_;
};

TEST(ControlPlaneWatchTest, FollowsEndpointsAndKeepsThemWhileTheControlPlaneIsAway) {
  tests::TempDir dir;
  auto plane = tests::ControlPlane::Start({.data_dir = dir / "data"});
  ASSERT_TRUE(plane.ok()) << plane.status();
  const std::string address = (*plane)->grpc_address();
  RecordingSink sink;
  std::atomic<int> ready{0};
  ControlPlaneWatch watch({.address = address, .initial_backoff = absl::Milliseconds(20)}, sink,
                          [&] { ++ready; });
  watch.Start();
  ASSERT_TRUE(Eventually([&] { return ready > 0; }));

  eofaas::v1::CreateFunctionRequest create;
  *create.mutable_function() = tests::ExampleFunction("watched");
  eofaas::v1::CreateFunctionResponse created;
  grpc::Status status =
      (*plane)->provision().CreateFunction(tests::Context().get(), create, &created);
  ASSERT_TRUE(status.ok()) << status.error_message() << "\n" << (*plane)->Log();
  ASSERT_TRUE(Eventually([&] {
    auto functions = sink.functions();
    return functions.count("watched") && functions["watched"].size() == 1;
  }));
  const ReplicaInfo replica = sink.functions()["watched"][0];
  EXPECT_EQ(replica.concurrency, 8);
  EXPECT_EQ(replica.generation, 1);

  // The control plane dies: the last endpoints stay.
  (*plane)->Kill();
  absl::SleepFor(absl::Milliseconds(300));
  ASSERT_EQ(sink.functions()["watched"].size(), 1u);
  EXPECT_EQ(sink.functions()["watched"][0].address, replica.address);

  // It comes back on the same address with the same state: a new snapshot, the same replica.
  const int snapshots = watch.snapshots();
  auto restarted = tests::ControlPlane::Start(
      {.data_dir = dir / "data", .flags = {absl::StrCat("--listen=", address)}});
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  ASSERT_TRUE(Eventually([&] { return watch.snapshots() > snapshots; }));
  EXPECT_EQ(sink.functions()["watched"].size(), 1u);
  EXPECT_EQ(sink.functions()["watched"][0].address, replica.address);

  // Deleted on the control plane: removed here.
  eofaas::v1::DeleteFunctionRequest remove;
  remove.set_name("watched");
  eofaas::v1::DeleteFunctionResponse removed;
  ASSERT_TRUE(
      (*restarted)->provision().DeleteFunction(tests::Context().get(), remove, &removed).ok());
  EXPECT_TRUE(Eventually([&] { return sink.functions().count("watched") == 0; }));
  watch.Stop();
}

// A control plane that is down but for its port: every connection is accepted and closed at
// once, and counted.
class ClosingListener {
 public:
  ClosingListener() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{.sin_family = AF_INET, .sin_port = 0};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    listen(fd_, 64);
    socklen_t length = sizeof(address);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      for (int client; (client = accept(fd_, nullptr, nullptr)) >= 0;) {
        ++accepted_;
        close(client);
      }
    });
  }
  ~ClosingListener() {
    shutdown(fd_, SHUT_RDWR);  // ends the accept
    thread_.join();
    close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// The channel tries again within the watch's own backoff (here at most 200 ms), not gRPC's,
// which waits 1 s, then 1.6 times longer each time (up to 2 min): a control plane that comes back
// after a long outage is reached within max_backoff.
TEST(ControlPlaneWatchTest, TriesAgainWithinItsOwnBackoff) {
  ClosingListener down;
  RecordingSink sink;
  ControlPlaneWatch watch({.address = down.address(),
                           .initial_backoff = absl::Milliseconds(20),
                           .max_backoff = absl::Milliseconds(200)},
                          sink, [] {});
  watch.Start();
  absl::SleepFor(absl::Seconds(3));
  watch.Stop();
  // gRPC's own schedule makes 3 attempts in 3 s; at most 200 ms apart make 15.
  EXPECT_GE(down.accepted(), 8);
}

}  // namespace
}  // namespace eofaas::proxy
